"""CAN simulator: a vehicle/battery model that speaks the project DBC, and a log replayer."""
