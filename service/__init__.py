"""The daemon and the cep command: Kafka in/out, Redis state, metrics, config."""
