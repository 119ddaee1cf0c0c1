"""Errors at the Kafka boundary, classified once: transient ones are retried."""

from core.errors import ClinicflowError


class ConnectorError(ClinicflowError):
    """A problem talking to something outside the process."""


class TransientKafkaError(ConnectorError):
    """The broker is unreachable or busy; retrying later may succeed."""


class PermanentKafkaError(ConnectorError):
    """The request can never succeed as made (bad config, authorisation, bad topic)."""


class BrokerSetupError(ConnectorError):
    """The local broker could not be installed, configured, started or stopped."""


class PublishInterruptedError(TransientKafkaError):
    """`clinicflow publish` lost the broker mid-file; the message says the line to resume from."""


class PublisherFencedError(ConnectorError):
    """Another process opened the outbox's transactional producer since this one did: it publishes now.

    Not transient: retrying would fence the other publisher in turn. The round in hand was aborted
    and its rows stay unsent for the current publisher."""
