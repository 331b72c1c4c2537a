"""Incidents: reports merged by place and time, routed to agencies, tracked to closure."""
