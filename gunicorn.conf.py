"""gunicorn settings for production. gunicorn reads this file by itself when started from this directory:

    gunicorn "lti_tool:create_app()"

Why a file of our own: the tool's session token travels in URLs (`?lt=...`, see lti_tool/tool_session.py), and
gunicorn's default access log writes the whole request line and the Referer, query strings included, so anyone
who can read the logs could open the tool as the people in them. This access log writes the path only
(`%(U)s`), and no Referer.
"""
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# Transcript PDFs and ZIP exports of a large course take a while; the LMS frame waits longer than this anyway.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# gunicorn 27's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl): a second instance on the
# host would take it over. Nothing here uses it.
control_socket_disable = True
accesslog = "-"
errorlog = "-"
# remote address, time, method, path WITHOUT the query string, protocol, status, bytes, duration, user agent
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
