"""Downloads the console offers: the history workbook (``excel.py``)."""
