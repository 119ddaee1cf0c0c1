"""I/O boundaries: the Kafka clients, the local broker, the outreach channels."""
