"""The real OpenIntent SDK (openintent 0.17.0 from PyPI) against `oidb serve`, unchanged."""

import threading
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from openintent import EventType, IntentStatus, OpenIntentClient
from openintent.exceptions import ConflictError, NotFoundError, OpenIntentError


def test_intents_are_created_read_and_listed(client):
    intent = client.create_intent("Research", description="find sources", initial_state={"step": 1})
    assert intent.title == "Research"
    assert intent.version == 1
    assert intent.state.to_dict() == {"step": 1}
    again = client.get_intent(intent.id)
    assert (again.id, again.title, again.description) == (intent.id, "Research", "find sources")
    client.create_intent("Second")
    titles = [i.title for i in client.list_intents()]
    assert titles == ["Research", "Second"]
    with pytest.raises(NotFoundError):
        client.get_intent("no-such-intent")


def test_state_status_and_agents_follow_the_version(client):
    intent = client.create_intent("Versioned")
    updated = client.update_state(intent.id, intent.version, {"progress": 0.5})
    assert updated.version == 2
    assert updated.state.to_dict()["progress"] == 0.5
    with pytest.raises(ConflictError):
        client.update_state(intent.id, intent.version, {"progress": 0.9})
    done = client.set_status(intent.id, updated.version, IntentStatus.COMPLETED, reason="done")
    assert done.status == IntentStatus.COMPLETED
    assert done.version == 3
    assigned = client.assign_agent(intent.id, "agent-b")
    assert assigned["agent_id"] == "agent-b"
    kinds = [e.event_type for e in client.get_events(intent.id)]
    assert kinds == [
        EventType.INTENT_CREATED,
        EventType.STATE_PATCHED,
        EventType.STATUS_CHANGED,
        EventType.AGENT_ASSIGNED,
    ]


def test_events_are_logged_and_read_back_with_each_filter(client):
    intent = client.create_intent("Log")
    logged = [
        client.log_event(intent.id, EventType.COMMENT, {"i": i}, trace_id="6aa8b9e0231b3e14729135bdd70a39d1")
        for i in range(5)
    ]
    assert [e.sequence for e in logged] == [2, 3, 4, 5, 6]
    assert all(e.event_hash and e.previous_event_hash for e in logged)
    events = client.get_events(intent.id)
    assert [e.id for e in events[1:]] == [e.id for e in logged]
    comments = client.get_events(intent.id, event_type=EventType.COMMENT)
    assert len(comments) == 5
    assert len(client.get_events(intent.id, limit=2)) == 2
    since = client.get_events(intent.id, since=logged[2].created_at)
    assert [e.id for e in since] == [e.id for e in logged[2:]]
    assert client.get_events(intent.id, since=datetime.now(timezone.utc).replace(year=2100)) == []


def test_every_llm_tool_and_stream_helper_is_logged(client):
    intent = client.create_intent("Helpers")
    request = client.log_llm_request_started(intent.id, request_id="req-1", provider="openai", model="gpt-4o", messages_count=2)
    client.log_llm_request_completed(intent.id, request_id="req-1", provider="openai", model="gpt-4o",
                                     messages_count=2, prompt_tokens=10, completion_tokens=5,
                                     total_tokens=15, duration_ms=120)
    client.log_llm_request_failed(intent.id, request_id="req-2", provider="openai", model="gpt-4o",
                                  messages_count=1, error="timeout")
    client.log_tool_call_started(intent.id, tool_name="search", tool_id="t1", arguments={"q": "x"})
    client.log_tool_call_completed(intent.id, tool_name="search", tool_id="t1", arguments={"q": "x"},
                                   result={"hits": 3}, duration_ms=40)
    client.log_tool_call_failed(intent.id, tool_name="search", tool_id="t2", arguments={}, error="boom")
    stream = client.start_stream(intent.id, stream_id="s1", provider="openai", model="gpt-4o")
    client.log_stream_chunk(intent.id, stream_id="s1", chunk_index=0)
    client.complete_stream(intent.id, stream_id="s1", provider="openai", model="gpt-4o", chunks_received=1, tokens_streamed=4)
    kinds = [e.event_type.value for e in client.get_events(intent.id)]
    for kind in [
        "llm_request_started", "llm_request_completed", "llm_request_failed",
        "tool_call_started", "tool_call_completed", "tool_call_failed",
        "stream_started", "stream_chunk", "stream_completed",
    ]:
        assert kind in kinds, (kind, kinds)
    assert request.payload["model"] == "gpt-4o"
    assert stream.payload["stream_id"] == "s1"


def test_sse_delivers_every_event_once_while_another_thread_logs(client):
    intent = client.create_intent("Streamed")
    received = []
    ready = threading.Event()

    def listen():
        stream = client.subscribe_sse(intent.id)
        ready.set()
        for event in stream:
            if event.type == "comment":
                received.append((event.id, event.data["payload"]["i"]))
                if len(received) == 60:
                    stream.stop() if hasattr(stream, "stop") else None
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    time.sleep(0.5)  # the stream connects, then starts with what comes next
    writer = OpenIntentClient(base_url=client.base_url, api_key="test-key", agent_id="writer")
    for i in range(60):
        writer.log_event(intent.id, EventType.COMMENT, {"i": i})
    listener.join(30)
    assert [i for _, i in received] == list(range(60)), received
    ids = [int(event_id) for event_id, _ in received]
    assert ids == sorted(set(ids)), "each event once, in position order"


def test_a_reconnect_with_last_event_id_gets_what_it_missed(served):
    import httpx

    base_url, _ = served
    client = OpenIntentClient(base_url=base_url, api_key="test-key", agent_id="sdk-agent")
    intent = client.create_intent("Resumed")
    for i in range(10):
        client.log_event(intent.id, EventType.COMMENT, {"i": i})
    events = client.get_events(intent.id)
    fifth = events[5]
    headers = {"X-API-Key": "test-key", "Last-Event-ID": "6", "Accept": "text/event-stream"}
    seen = []
    with httpx.stream("GET", f"{base_url}/api/v1/intents/{intent.id}/subscribe", headers=headers, timeout=30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("id:"):
                seen.append(int(line[3:].strip()))
                if len(seen) == 5:
                    break
    assert seen == [7, 8, 9, 10, 11]
    assert fifth.sequence == 6


def test_the_api_key_is_checked(served):
    base_url, _ = served
    wrong = OpenIntentClient(base_url=base_url, api_key="wrong-key", agent_id="x")
    with pytest.raises(OpenIntentError) as refused:
        wrong.list_intents()
    assert refused.value.status_code == 401


class _FakeCompletions:
    def create(self, **kwargs):
        return SimpleNamespace(
            id="chatcmpl-1",
            model=kwargs["model"],
            choices=[SimpleNamespace(
                index=0,
                message=SimpleNamespace(role="assistant", content="Hello back", tool_calls=None),
                finish_reason="stop",
            )],
            usage=SimpleNamespace(prompt_tokens=7, completion_tokens=3, total_tokens=10),
        )


class _FakeOpenAI:
    """Stands where `openai.OpenAI()` would: no network."""

    def __init__(self):
        self.chat = SimpleNamespace(completions=_FakeCompletions())
        self.completions = _FakeCompletions()


def test_the_openai_adapter_logs_its_requests_into_the_served_file(client, served):
    from openintent.adapters import OpenAIAdapter

    intent = client.create_intent("Adapter")
    adapter = OpenAIAdapter(_FakeOpenAI(), client, intent_id=intent.id)
    response = adapter.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hello"}])
    assert response.choices[0].message.content == "Hello back"
    events = client.get_events(intent.id)
    kinds = [e.event_type.value for e in events]
    assert "llm_request_started" in kinds and "llm_request_completed" in kinds, kinds
    completed = next(e for e in events if e.event_type.value == "llm_request_completed")
    assert completed.payload["model"] == "gpt-4o"
    assert completed.payload.get("total_tokens") == 10 or completed.payload.get("tokens", {}).get("total") == 10, completed.payload


def test_costs_are_recorded_under_a_governance_max_cost(client):
    intent = client.create_intent("Spend", governance_policy={"max_cost": 1.0})
    client.record_cost(intent.id, "api_call", 0.6, "USD", provider="openai", metadata={"model": "gpt-4o"})
    client.record_cost(intent.id, "api_call", 0.3, "USD")
    with pytest.raises(OpenIntentError) as refused:
        client.record_cost(intent.id, "api_call", 0.5, "USD")
    assert refused.value.status_code == 403
    assert refused.value.response["detail"]["rule"] == "max_cost"
    costs, summary = client.get_costs(intent.id)
    assert [c.amount for c in costs] == [0.6, 0.3]
    assert abs(summary.total - 0.9) < 1e-9
    assert summary.by_agent == {"sdk-agent": pytest.approx(0.9)}
    policy = client.get_governance_policy(intent.id)
    assert policy["effective_policy"]["max_cost"] == 1.0
    current = client.get_intent(intent.id)
    updated = client.set_governance_policy(intent.id, current.version, {"max_cost": 2.0})
    assert updated.version == current.version + 1
    client.record_cost(intent.id, "api_call", 0.5, "USD")


def test_chains_checkpoints_and_merkle_proofs_check_out_with_the_sdks_own_models(served):
    import httpx

    base_url, _ = served
    client = OpenIntentClient(base_url=base_url, api_key="test-key", agent_id="sdk-agent")
    intent = client.create_intent("Proven")
    logged = [client.log_event(intent.id, EventType.COMMENT, {"i": i}) for i in range(6)]
    chain = client.verify_event_chain(intent.id)
    assert chain.valid and chain.event_count == 7
    made = httpx.post(f"{base_url}/api/v1/checkpoints", json={"intent_id": intent.id},
                      headers={"X-API-Key": "test-key"})
    assert made.status_code == 201, made.text
    checkpoints = client.list_checkpoints(intent_id=intent.id)
    assert len(checkpoints) == 1 and checkpoints[0].event_count == 7
    checkpoint = client.get_checkpoint(checkpoints[0].checkpoint_id)
    for event in logged:
        proof = client.get_merkle_proof(checkpoint.checkpoint_id, event.id)
        assert proof.verify(), proof
        assert proof.merkle_root == checkpoint.merkle_root
    client.log_event(intent.id, EventType.COMMENT, {"i": 6})
    later = httpx.post(f"{base_url}/api/v1/checkpoints", json={"intent_id": intent.id},
                       headers={"X-API-Key": "test-key"}).json()
    consistency = client.verify_consistency(checkpoint.checkpoint_id, later["checkpoint_id"])
    assert consistency.consistent
