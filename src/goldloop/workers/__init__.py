"""Background work: rule tailers, online evaluation, alert evaluation, notification delivery.

In-process by default (started by the server's lifespan); `goldloop worker` runs the same loops
as a separate process. Several processes may run at once on PostgreSQL: every unit of work is
claimed in the database first, so none is done twice.
"""
