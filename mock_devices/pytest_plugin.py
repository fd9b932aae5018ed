"""pytest fixtures that start mock Huawei fleets for a test and stop them afterwards."""
