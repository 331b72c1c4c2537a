"""Open311 GeoReport v2: categories as services, incidents as service requests."""
