"""The runtime: ``build`` turns settings into objects (the only place that does), ``daemon`` schedules
``watch``, ``oneshot`` holds ``scan``, ``record`` and ``replay``, and ``flow`` is what happens to one
scrape in all of them. ``fanout`` carries incident events to the sinks."""
