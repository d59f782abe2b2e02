"""`dualtalk-fuzz`: the DualTalk node under a hostile stream, measured from outside.

`input_contract` says which messages the node must reject; `hostile_messages` plans a valid
conversation mixed with every bad kind; `fuzz_probe` records the node's output in its own
process; `counter_check` holds the node's /diagnostics counters against what was sent;
`fuzz_cli` runs it all and prints the one-line verdict.
"""
