"""Timing pages in-process: requests through Flask's test client with every SQL statement counted."""
import time

from sqlalchemy import event

from lti_tool.extensions import db


def timed_requests(app, path: str, query: dict, repeat: int):
    """One warm-up request, then `repeat` timed ones: ([ms], [statements], last response). Fails on non-200."""
    counter = [0]

    def count(conn, cursor, statement, parameters, context, executemany):
        counter[0] += 1

    client = app.test_client()
    with app.app_context():
        engine = db.engine
    client.get(path, query_string=query)  # warm: templates compiled, framework cached by the database
    times, counts = [], []
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(repeat):
            counter[0] = 0
            started = time.perf_counter()
            resp = client.get(path, query_string=query)
            times.append((time.perf_counter() - started) * 1000)
            counts.append(counter[0])
            assert resp.status_code == 200, (resp.status_code, resp.get_data(as_text=True)[:500])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return times, counts, resp
