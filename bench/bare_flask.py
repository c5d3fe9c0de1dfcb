"""The floor for bench/compare.py: a bare Flask app with the same two endpoints and no LTI work at all.

/lti/login answers 302 to the platform with a fresh state and nonce; /lti/launch answers 200 with a short page.
What is left is gunicorn, Flask, HTTP and the load generator: the ceiling any tool can reach on this machine.
Run: gunicorn -w 4 --chdir bench 'bare_flask:create_app()'
"""
import os
import secrets
from urllib.parse import urlencode

from flask import Flask, redirect, request


def create_app():
    app = Flask(__name__)
    auth_url = os.environ.get("BARE_AUTH_URL", "http://127.0.0.1/auth")

    @app.route("/")
    def index():
        return "bare flask"

    @app.route("/lti/login", methods=["GET", "POST"])
    def login():
        params = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
                  "redirect_uri": request.values.get("target_link_uri", ""),
                  "client_id": request.values.get("client_id", ""), "response_mode": "form_post"}
        return redirect(auth_url + "?" + urlencode(params))

    @app.route("/lti/launch", methods=["POST"])
    def launch():
        return f"<!doctype html><p>launched, {len(request.form.get('id_token', ''))} bytes of id_token</p>"

    return app
