"""ExaBGP's text syntax, read and written: routes and their attributes (route), communities of the
three kinds (communities) and FlowSpec rules (flowspec), for the config file, API programs, the
control socket and health checks alike. Depends on fleetbgp.wire (what the text means) and
fleetbgp.literals (numbers and addresses in text), nothing else of the agent."""
