"""The shop owner's side: the join page, overview, team, links and QR codes, My shop, earnings, payouts and the
member REST API. At the top of the stack: it reads the apps below through their selectors and writes through their
services; none of them imports it."""
