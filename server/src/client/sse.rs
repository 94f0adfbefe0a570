//! A minimal Server-Sent Events reader for the live build log: events are
//! separated by a blank line; `event:`, `id:` and `data:` fields.

use anyhow::Context;
use futures::StreamExt;

/// One event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Splits text into complete events; returns them and the unfinished rest.
pub fn parse(buffer: &str) -> (Vec<SseEvent>, String) {
    let normalized = buffer.replace("\r\n", "\n");
    let mut events = Vec::new();
    let mut rest = normalized.as_str();
    while let Some(end) = rest.find("\n\n") {
        let block = &rest[..end];
        rest = &rest[end + 2..];
        let mut ev = SseEvent { event: "message".into(), ..SseEvent::default() };
        let mut data = Vec::new();
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => ev.event = value.to_string(),
                "id" => ev.id = Some(value.to_string()),
                "data" => data.push(value),
                _ => {} // comments (keep-alive) and unknown fields
            }
        }
        if !data.is_empty() {
            ev.data = data.join("\n");
            events.push(ev);
        }
    }
    (events, rest.to_string())
}

/// Reads `response` and calls `on_event` for each event until it returns
/// `false` or the stream ends.
pub async fn follow(
    response: reqwest::Response,
    mut on_event: impl FnMut(SseEvent) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let mut stream = response.bytes_stream();
    let mut pending = Vec::<u8>::new();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        pending.extend_from_slice(&chunk.context("the log stream was cut off")?);
        // Only decode up to the last complete UTF-8 character.
        let valid = match std::str::from_utf8(&pending) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        text.push_str(std::str::from_utf8(&pending[..valid]).unwrap_or_default());
        pending.drain(..valid);
        let (events, rest) = parse(&text);
        text = rest;
        for ev in events {
            if !on_event(ev)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_and_keeps_the_rest() {
        let (events, rest) =
            parse(": keep-alive\n\nevent: line\nid: 3\ndata: {\"a\":1}\n\nevent: end\ndata: x");
        assert_eq!(
            events,
            vec![SseEvent { event: "line".into(), id: Some("3".into()), data: "{\"a\":1}".into() }]
        );
        assert_eq!(rest, "event: end\ndata: x");
    }

    #[test]
    fn joins_multi_line_data_and_handles_crlf() {
        let (events, rest) = parse("data: a\r\ndata: b\r\n\r\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "message");
        assert_eq!(events[0].data, "a\nb");
        assert!(rest.is_empty());
    }
}
