# burnban: the service image. Build: docker build -t burnban .
FROM python:3.12-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY geo ./geo
COPY migrations ./migrations
RUN python -m build --wheel --outdir /dist

FROM python:3.12-slim
RUN useradd --create-home --uid 10001 burnban
# The exact versions of requirements.lock (`./dev lock`), then the app without resolving again.
COPY requirements.lock /tmp/
RUN pip install --no-cache-dir -r /tmp/requirements.lock && rm /tmp/requirements.lock
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir --no-deps /tmp/*.whl && rm /tmp/*.whl && pip check
USER burnban
WORKDIR /home/burnban
ENV BURNBAN_MEDIA_DIR=/home/burnban/media \
    BURNBAN_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
# Migrations are a separate step (`burnban db upgrade`); compose runs it before serving.
CMD ["burnban", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
