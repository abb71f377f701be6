//! Token usage from the responses providers really send (shapes as their API references show
//! them), and from OpenTelemetry GenAI spans. A response without usage is not an error.

use oidb::observe::UsageShape;
use oidb::Usage;
use serde_json::{json, Value};

fn usage(
    prompt: Option<u64>,
    completion: Option<u64>,
    total: Option<u64>,
    cached: Option<u64>,
    cache_creation: Option<u64>,
    reasoning: Option<u64>,
) -> Usage {
    let mut u = Usage::default();
    u.prompt_tokens = prompt;
    u.completion_tokens = completion;
    u.total_tokens = total;
    u.cached_tokens = cached;
    u.cache_creation_tokens = cache_creation;
    u.reasoning_tokens = reasoning;
    u
}

#[test]
fn openai_chat_completion() {
    let response = json!({
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1_741_570_283,
        "model": "o3-mini-2025-01-31",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "The answer is 42.", "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": 1117,
            "completion_tokens": 46,
            "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 30, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
            }
        },
        "service_tier": "default",
        "system_fingerprint": "fp_42bfad963b"
    });
    let expected = usage(Some(1117), Some(46), Some(1163), Some(1024), None, Some(30));
    assert_eq!(Usage::from_openai(&response), Some(expected));
    assert_eq!(
        Usage::detect(&response),
        Some((expected, UsageShape::OpenAiChat))
    );
}

#[test]
fn openai_stream_chunks() {
    // With stream_options.include_usage, every chunk has "usage": null but the last.
    let middle = json!({
        "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1_694_268_190,
        "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": {"content": "Hello"}, "logprobs": null, "finish_reason": null}],
        "usage": null
    });
    assert_eq!(Usage::from_response(&middle), None);
    assert_eq!(Usage::from_openai(&middle), None);
    let last = json!({
        "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1_694_268_190,
        "model": "gpt-4o-mini", "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21,
                  "prompt_tokens_details": null, "completion_tokens_details": null}
    });
    assert_eq!(
        Usage::from_response(&last),
        Some(usage(Some(9), Some(12), Some(21), None, None, None))
    );
}

#[test]
fn openai_responses_api() {
    let response = json!({
        "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
        "object": "response",
        "created_at": 1_741_476_777,
        "status": "completed",
        "model": "gpt-4o-2024-08-06",
        "output": [{"type": "message", "id": "msg_67ccd3acc8d48190a77525dc6de64b4104becb25c45c1d41",
                    "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": "A unicorn story.", "annotations": []}]}],
        "usage": {
            "input_tokens": 328,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 52,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 380
        }
    });
    let expected = usage(Some(328), Some(52), Some(380), Some(0), None, Some(0));
    assert_eq!(
        Usage::detect(&response),
        Some((expected, UsageShape::OpenAiResponses))
    );
    assert_eq!(Usage::from_openai(&response), Some(expected));
    // The streamed `response.completed` event carries the same response under "response".
    let event = json!({"type": "response.completed", "sequence_number": 42, "response": response});
    assert_eq!(Usage::from_response(&event), Some(expected));
    assert_eq!(Usage::from_openai(&event), Some(expected));
}

#[test]
fn anthropic_message_with_prompt_caching() {
    let response = json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hello!"}],
        "model": "claude-sonnet-4-20250514",
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {
            "input_tokens": 21,
            "cache_creation_input_tokens": 188_086,
            "cache_read_input_tokens": 0,
            "output_tokens": 393,
            "service_tier": "standard"
        }
    });
    // Anthropic's input_tokens leaves out cache reads and writes; prompt_tokens counts them all.
    let expected = usage(Some(188_107), Some(393), None, Some(0), Some(188_086), None);
    assert_eq!(
        Usage::detect(&response),
        Some((expected, UsageShape::Anthropic))
    );
    assert_eq!(Usage::from_anthropic(&response), Some(expected));
    assert_eq!(expected.total(), Some(188_500));

    let cached_read = json!({"type": "message", "usage": {
        "input_tokens": 21, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 188_086,
        "output_tokens": 393}});
    let read = Usage::from_response(&cached_read).unwrap();
    assert_eq!(
        (read.prompt_tokens, read.cached_tokens),
        (Some(188_107), Some(188_086))
    );
}

#[test]
fn anthropic_stream_builds_up_its_usage() {
    let start = json!({"type": "message_start", "message": {
        "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant",
        "content": [], "model": "claude-opus-4-1", "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 25, "output_tokens": 1}}});
    let delta = json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"output_tokens": 15}});
    let text = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}});

    let mut total = Usage::default();
    for event in [&start, &text, &delta] {
        if let Some(u) = Usage::from_response(event) {
            total.merge(&u);
        }
    }
    assert_eq!(total, usage(Some(25), Some(15), None, None, None, None));
    assert_eq!(total.total(), Some(40));
}

#[test]
fn gemini_with_thinking() {
    let response = json!({
        "candidates": [{
            "content": {"parts": [{"text": "AI learns patterns from data."}], "role": "model"},
            "finishReason": "STOP",
            "index": 0
        }],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 120,
            "totalTokenCount": 1186,
            "cachedContentTokenCount": 4,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}],
            "thoughtsTokenCount": 1056
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "7Dt-aLWDI4SC1dkP5N2vuAQ"
    });
    // Thinking is output: completion = candidates + thoughts.
    let expected = usage(Some(10), Some(1176), Some(1186), Some(4), None, Some(1056));
    assert_eq!(
        Usage::detect(&response),
        Some((expected, UsageShape::Gemini))
    );
    assert_eq!(Usage::from_gemini(&response), Some(expected));

    // The Python SDK's model_dump() writes snake_case.
    let dumped = json!({"usage_metadata": {"prompt_token_count": 10, "candidates_token_count": 120,
                                           "total_token_count": 130}});
    assert_eq!(
        Usage::from_response(&dumped),
        Some(usage(Some(10), Some(120), Some(130), None, None, None))
    );
}

#[test]
fn opentelemetry_genai_attributes() {
    let flat = json!({
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 180,
        "gen_ai.usage.cache_read.input_tokens": 40,
        "gen_ai.usage.cache_creation.input_tokens": 10,
        "gen_ai.usage.reasoning.output_tokens": 60
    });
    let expected = usage(Some(100), Some(180), None, Some(40), Some(10), Some(60));
    assert_eq!(
        Usage::detect(&flat),
        Some((expected, UsageShape::OtelGenAi))
    );
    assert_eq!(
        Usage::from_otel_genai(&json!({"name": "chat gpt-4o", "attributes": flat})),
        Some(expected)
    );
    // The older names.
    let old = json!({"gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 3});
    assert_eq!(Usage::from_otel_genai(&old).unwrap().total(), Some(10));
}

#[test]
fn opentelemetry_otlp_json_span() {
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::Span;

    let attribute = |key: &str, value: any_value::Value| KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
    };
    let span = Span {
        name: "chat claude-sonnet-4".to_owned(),
        attributes: vec![
            attribute(
                "gen_ai.provider.name",
                any_value::Value::StringValue("anthropic".into()),
            ),
            attribute(
                "gen_ai.usage.input_tokens",
                any_value::Value::IntValue(2116),
            ),
            attribute(
                "gen_ai.usage.output_tokens",
                any_value::Value::IntValue(393),
            ),
            attribute(
                "gen_ai.usage.cache_read.input_tokens",
                any_value::Value::IntValue(2095),
            ),
        ],
        ..Span::default()
    };
    // OTLP/JSON as the protocol's serde writes it (64-bit integers as strings).
    let json: Value = serde_json::to_value(&span).unwrap();
    let expected = usage(Some(2116), Some(393), None, Some(2095), None, None);
    assert_eq!(Usage::from_otel_genai(&json), Some(expected), "{json}");
    assert_eq!(Usage::from_response(&json), Some(expected));
    assert_eq!(Usage::from_otel_genai(&json["attributes"]), Some(expected));
}

#[test]
fn missing_usage_is_not_an_error() {
    for response in [
        json!({"choices": [{"message": {"content": "hi"}}]}),
        json!({"usage": null}),
        json!({"usage": {}}),
        json!({"usageMetadata": {"promptTokensDetails": []}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"gen_ai.request.model": "gpt-4o"}),
        json!([]),
        json!("not a response"),
        json!(null),
    ] {
        assert_eq!(Usage::from_response(&response), None, "{response}");
        assert_eq!(Usage::from_openai(&response), None, "{response}");
        assert_eq!(Usage::from_anthropic(&response), None, "{response}");
        assert_eq!(Usage::from_gemini(&response), None, "{response}");
        assert_eq!(Usage::from_otel_genai(&response), None, "{response}");
    }
    // Counts that are not counts are left out, not guessed.
    let odd =
        json!({"usage": {"prompt_tokens": -3, "completion_tokens": "12", "total_tokens": 1.5}});
    assert_eq!(
        Usage::from_response(&odd),
        Some(usage(None, Some(12), None, None, None, None))
    );
}
