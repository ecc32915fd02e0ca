"""Jobs on the database that are not requests: migrations, daily maintenance (partitions
and retention), and rotating the encryption keys."""
