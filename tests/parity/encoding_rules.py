"""Rules for some ExaBGP encoding tests, written by hand (encoding_expectations.py is generated)."""

# Text that must never appear in a test's differences, whatever the timing (an UNSTABLE test keeps
# its point this way): a route for a neighbor the program is not attached to.
FORBIDDEN: dict[str, str] = {
    'api-multiple-api': '2.2.2.2/32',
}

# Tests whose API program never stops (ExaBGP's peer ends the test once it has every message it
# expects): only the first UPDATEs, as many as the .msg lists, are compared.
ENDLESS: dict[str, str] = {
    'conf-watchdog': 'watchdog.run toggles the watchdog every 0.2 s until the speaker exits',
}
