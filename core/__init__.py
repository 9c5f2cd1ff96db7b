"""The ground floor: helpers every app may use, importing no app of the project (money and cents, phones, client
addresses and rate limits, images, the site's own address, log redaction, API and admin building blocks, task
sending). See docs/architecture.md."""
