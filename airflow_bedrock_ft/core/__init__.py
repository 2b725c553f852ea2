"""Plain-Python core shared by the Airflow layer, the command line and the emulator.

Nothing under this package imports ``airflow``.
"""
