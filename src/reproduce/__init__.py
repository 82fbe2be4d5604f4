"""Published tables rebuilt from logged runs (``python -m src.reproduce``): ``app`` (collect or
train each block's runs, render, write), ``tables`` (each table's layout, as its readers know
it) and ``__main__`` (the entry)."""
