"""The failover drill: a PostgreSQL cluster under Patroni, two servers, two dispatchers and a
mail server on loopback, each killed in turn under load while the promises are checked."""
