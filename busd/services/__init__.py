"""Services by type and time by activity, per visit (issue 16, point 6).

:mod:`~busd.services.tally` holds one visit's values; :mod:`~busd.services.counter`
is the component that follows the tracker's visits, keeps the tallies durable and
publishes each change; the staff page (busd/display) drives it.
"""
