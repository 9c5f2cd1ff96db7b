"""The ground floor: helpers every app may use, importing no app of the project (money and cents, phones, client
addresses and rate limits, one-time codes sent by SMS, images, the site's own address, log redaction, API, form and
admin building blocks, CSV safety, SVG charts, the lock primitives and the order of all locks, task sending). See
docs/architecture.md."""
