"""Tests of the Airflow sensors."""
