"""`parcours forget` in streaming mode: the suppression topic, then the topics read back.

Intuition: with `PARCOURS_KAFKA_BOOTSTRAP` set, the workers and the sink hold the person too:
in their state, in the topics between them and in the dead-letter topic. The erasure in
ClickHouse (streams/privacy/erase.py) publishes the subject's hashes to the suppression topic
before it deletes any row, so from then on every worker drops her input and erases its own
state and changelogs (streams/worker/erasure.py), and the sink stores nothing naming her. When
the rows are gone, this module deletes from the records and journey topics what their
consumers have already committed (done work), and rewrites the dead-letter topic without the
messages naming her (streams/worker/topic_purge.py). What a consumer has not read yet stays
until it reads it, and is dropped then. The input topics are the producers': untouched.
"""

from __future__ import annotations

from streams.privacy.keys import PrivacyKey, SubjectKind
from streams.privacy.policy import PrivacyFilter
from streams.settings import StreamSettings
from streams.worker.sink_stage import SINK_GROUP
from streams.worker.suppression_topic import publish
from streams.worker.topic_purge import TopicPurge


class StreamingErasure:
    """The streaming side of one `parcours forget`."""

    def __init__(self, bootstrap: str, stream: StreamSettings, key: PrivacyKey) -> None:
        self.bootstrap = bootstrap
        self.stream = stream
        self.key = key
        self.hashes: list[str] = []

    def publish(self, entries: list[tuple[SubjectKind, str]], at_ms: int) -> None:
        """Put the subject on the suppression topic (raises `PrivacyUnavailable`)."""
        publish(self.bootstrap, self.stream.suppressions_topic, entries, at_ms)
        self.hashes = [h for _, h in entries]

    def purge_topics(self) -> dict[str, int]:
        """Records deleted per topic read back (see the module)."""
        purge = TopicPurge(self.bootstrap)
        names_subject = PrivacyFilter(self.key, suppressed=self.hashes).names_suppressed
        stream = self.stream
        return {
            stream.records_topic: purge.delete_consumed(stream.records_topic, SINK_GROUP),
            stream.journey_topic: purge.delete_consumed(stream.journey_topic, stream.app_id),
            stream.dlq_topic: purge.rewrite_without(stream.dlq_topic, names_subject),
        }
