"""The demo's and the tests' embedded parts: a real ``redis-server``, the osmem search server and the loopback
fixture HTTP server started as processes (``services``), the HTTP server itself (``fixture_server``), the bundled
sample feeds and pages (``demo_data/``), and finding the services a demo left running (``discover``)."""
