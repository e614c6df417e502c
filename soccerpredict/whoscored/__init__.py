"""WhoScored: parse saved pages and JSON responses into the raw match contract.

`pages` reads the current site (fixtures JSON, season pages, match centre, livescores),
`legacy` the old mobile-API stage files, `teams` maps names onto football-data's spelling,
`records` builds the contract table and `reconcile` checks it against football-data.
Nothing here touches the network or a browser.
"""
