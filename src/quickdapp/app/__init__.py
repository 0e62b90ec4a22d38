"""The application: the resources a process works with (ServerApp), what every server start
does to the queue, and the chain's side of health."""
