"""The store: the only layer that holds SQL. Services call its functions with a connection
obtained from ``Database.read`` or ``Database.write``."""
