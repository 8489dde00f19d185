"""Pure domain code: models, rules and errors. Imports nothing else of Goldloop."""
