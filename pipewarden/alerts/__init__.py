"""Alerts: findings become incidents and outbox rows (`announce`), then Slack messages (`deliver`).

`findings` turns what the stages record (check results, sync runs, reconciliation runs) into
verdicts; `announce` keeps one open incident per (table, check) and writes what is worth telling
to the outbox in the caller's transaction; `slack_message` renders an alert as Block Kit;
`slack_client` builds the client and classifies Slack's errors; `deliver` empties the outbox,
one message per unit that `threads` posts in its incident's thread (`thread_message` renders
the parent, `links` the flow run and dashboard links).
"""
