"""Lab traffic tools: small programs the lab runs in its containers.

Among them ``labweb`` (the HTTP service each lab server runs) and ``loadclient`` (the open-loop
load client of the client container). Each module is a single file that uses only the Python
standard library: they are copied into Debian 12 containers that have ``python3`` and nothing
else, and run there as scripts. From the repository they import as ``traffic.<module>`` (``lab/``
is on pytest's pythonpath).
"""
