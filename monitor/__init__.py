"""`favad monitor`: the operators' live view of 128 (AMI for calls, the database for complaints)."""
