//! The stdio transport: one JSON-RPC message per line on stdin, answers on stdout.
//!
//! Unlike rmcp's `AsyncRwTransport`, which drops an oversized line or unparsable JSON with a
//! log line only (the client then waits forever), every line that is not a valid message gets
//! a JSON-RPC error, with the request's `id` whenever it can be recovered:
//!
//! - a line over [`MAX_MESSAGE_BYTES`]: `-32600` (invalid request); the id is looked for in the
//!   first [`ID_PREFIX_BYTES`] of the line, which is all that is kept of it;
//! - text that is not JSON: `-32700` (parse error), the id recovered from the text if it is
//!   there;
//! - JSON that is not a JSON-RPC message: `-32600`, with its `id`.
//!
//! Without a recoverable id the error has none (as JSON-RPC and MCP say). Notifications (no
//! `id`) of unknown shape are ignored, as JSON-RPC requires. Reads are cancel-safe (rmcp polls
//! `receive` inside a `select!`): a partial line stays in the transport's buffer.

use std::future::Future;
use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{
    ClientJsonRpcMessage, ErrorCode, ErrorData, JsonRpcMessage, JsonRpcResponse, RequestId,
    ServerJsonRpcMessage, ServerResult,
};
use rmcp::transport::Transport;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

use crate::tools::{self, catalogue};

/// Largest message accepted on stdin (16 MiB, as rmcp's default and the HTTP side).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// How much of an oversized line is kept to recover its id.
pub const ID_PREFIX_BYTES: usize = 64 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The server side of a line-delimited JSON-RPC stream (stdin/stdout, or any pair).
pub struct StdioTransport<R, W> {
    read: BufReader<R>,
    line: Vec<u8>,
    max: usize,
    /// The start of an oversized line, kept while the rest of it is skipped.
    oversized: Option<Vec<u8>>,
    write: Arc<Mutex<Option<W>>>,
    /// Run once, after the first message that follows the `initialize` answer is written
    /// ([`StdioTransport::after_start_up`]); taken by the `send` of that message.
    after_start_up: Option<StartUpHook>,
}

/// What [`StdioTransport::after_start_up`] runs.
pub type StartUpHook = Box<dyn FnOnce() + Send>;

enum LineRead {
    Line,
    /// A line over the cap has ended; its first bytes.
    Oversized(Vec<u8>),
    Eof,
    Io(std::io::Error),
}

enum Step {
    Line,
    More,
    Oversized,
}

impl<R, W> StdioTransport<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    pub fn new(read: R, write: W) -> Self {
        Self::with_max_message_bytes(read, write, MAX_MESSAGE_BYTES)
    }

    /// With another cap on the size of one message (tests).
    pub fn with_max_message_bytes(read: R, write: W, max: usize) -> Self {
        Self {
            read: BufReader::new(read),
            line: Vec::new(),
            max,
            oversized: None,
            write: Arc::new(Mutex::new(Some(write))),
            after_start_up: None,
        }
    }

    /// Run `hook` once, on the runtime, right after the first message that follows the
    /// `initialize` answer has been written: a host's start-up exchange (`initialize`, then
    /// `tools/list`) is then over, and the client has what it needs. Work that no answer of that
    /// exchange needs (warming caches up) can start there instead of competing with it for the
    /// CPU. A client that sends nothing after `initialize` never triggers it.
    pub fn after_start_up(mut self, hook: impl FnOnce() + Send + 'static) -> Self {
        self.after_start_up = Some(Box::new(hook));
        self
    }

    /// One `\n`-terminated line into `self.line`, never buffering more than the cap.
    async fn read_line(&mut self) -> LineRead {
        loop {
            let (consumed, step) = {
                let available = match self.read.fill_buf().await {
                    Ok(a) => a,
                    Err(e) => return LineRead::Io(e),
                };
                if available.is_empty() {
                    if let Some(prefix) = self.oversized.take() {
                        return LineRead::Oversized(prefix);
                    }
                    return LineRead::Eof;
                }
                let newline = available.iter().position(|b| *b == b'\n');
                let take = newline.map_or(available.len(), |i| i + 1);
                let chunk = available.get(..take).unwrap_or_default();
                if let Some(prefix) = self.oversized.as_mut() {
                    let room = ID_PREFIX_BYTES.saturating_sub(prefix.len());
                    prefix
                        .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                    (
                        take,
                        if newline.is_some() {
                            Step::Oversized
                        } else {
                            Step::More
                        },
                    )
                } else if self.line.len().saturating_add(take) > self.max {
                    let mut prefix = std::mem::take(&mut self.line);
                    prefix.truncate(ID_PREFIX_BYTES);
                    let room = ID_PREFIX_BYTES.saturating_sub(prefix.len());
                    prefix
                        .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                    self.oversized = Some(prefix);
                    (
                        take,
                        if newline.is_some() {
                            Step::Oversized
                        } else {
                            Step::More
                        },
                    )
                } else {
                    self.line.extend_from_slice(chunk);
                    (
                        take,
                        if newline.is_some() {
                            Step::Line
                        } else {
                            Step::More
                        },
                    )
                }
            };
            self.read.consume(consumed);
            match step {
                Step::Line => return LineRead::Line,
                Step::More => {}
                Step::Oversized => {
                    return LineRead::Oversized(self.oversized.take().unwrap_or_default());
                }
            }
        }
    }

    /// Writes an error answer on a task of its own, so a cancelled `receive` never leaves a
    /// half-written line.
    fn answer_error(&self, code: ErrorCode, message: String, id: Option<RequestId>) {
        let msg = ServerJsonRpcMessage::error(ErrorData::new(code, message, None), id);
        let write = self.write.clone();
        tokio::spawn(async move {
            if let Err(e) = write_message(&write, msg).await {
                tracing::debug!(error = %e, "cannot write an error answer on stdout");
            }
        });
    }

    /// What to answer for a line that is not a valid message (`None`: a notification, ignored).
    fn classify(line: &[u8]) -> Option<(ErrorCode, String, Option<RequestId>)> {
        match serde_json::from_slice::<serde_json::Value>(line) {
            Err(e) => Some((
                ErrorCode::PARSE_ERROR,
                format!("Parse error: the line is not JSON ({e})"),
                recover_id(line),
            )),
            Ok(v) => {
                let id = v.get("id");
                if id.is_none() && v.get("method").is_some() {
                    return None;
                }
                let id = id.and_then(|i| serde_json::from_value::<RequestId>(i.clone()).ok());
                Some((
                    ErrorCode::INVALID_REQUEST,
                    "Invalid request: the JSON is not a JSON-RPC 2.0 message this server accepts"
                        .to_owned(),
                    id,
                ))
            }
        }
    }
}

/// The line of `msg`, `\n` included. A `tools/list` answer copies each catalogue tool's text
/// ([`catalogue::rendered`]) instead of serialising the tool: the same bytes, for a small part
/// of the work (serialising the 37 tools' schemas was an eighth of a cold start).
pub fn encode(mut msg: ServerJsonRpcMessage) -> serde_json::Result<Vec<u8>> {
    if let JsonRpcMessage::Response(JsonRpcResponse {
        result: ServerResult::ListToolsResult(list),
        ..
    }) = &mut msg
        && !list.tools.is_empty()
    {
        let tools = std::mem::take(&mut list.tools);
        let head = serde_json::to_vec(&msg)?;
        if let Some(close) = empty_tools_end(&head)
            && let (Some(before), Some(after)) = (head.get(..close), head.get(close..))
        {
            let mut out = Vec::with_capacity(head.len() + tools.len() * 4096);
            out.extend_from_slice(before);
            for (i, tool) in tools.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match catalogue::rendered(tool) {
                    Some(text) => out.extend_from_slice(text.as_bytes()),
                    None => serde_json::to_writer(&mut out, tool)?,
                }
            }
            out.extend_from_slice(after);
            out.push(b'\n');
            return Ok(out);
        }
        if let JsonRpcMessage::Response(JsonRpcResponse {
            result: ServerResult::ListToolsResult(list),
            ..
        }) = &mut msg
        {
            list.tools = tools;
        }
    }
    if let JsonRpcMessage::Response(JsonRpcResponse {
        result: ServerResult::CallToolResult(result),
        ..
    }) = &mut msg
        && tools::structured_text(result).is_some()
    {
        return encode_structured_by_text(msg);
    }
    let mut bytes = serde_json::to_vec(&msg)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The line of a tool result whose structured content is a stand-in for its JSON text
/// (`tools::structured_text`). The message is serialised with an empty text and the
/// stand-in; the text is then written into the first (as a JSON string, [`write_json_string`])
/// and copied as it is in place of the second. Either's bytes (`"text":""`, the stand-in) can only
/// be a key and its value (inside a JSON string their quotes would be escaped); unless each
/// occurs exactly once, the structured content is parsed from the text and serialised.
fn encode_structured_by_text(mut msg: ServerJsonRpcMessage) -> serde_json::Result<Vec<u8>> {
    const KEY: &[u8] = b"\"structuredContent\":";
    const EMPTY_TEXT: &[u8] = b"\"text\":\"\"";
    let stand_in = tools::structured_stand_in_json().as_bytes();
    if let JsonRpcMessage::Response(JsonRpcResponse {
        result: ServerResult::CallToolResult(result),
        ..
    }) = &mut msg
        && tools::structured_text(result).is_some()
        && let Some(rmcp::model::ContentBlock::Text(block)) = result.content.first_mut()
    {
        let text = std::mem::take(&mut block.text);
        let head = serde_json::to_vec(&msg)?;
        if let (Some(text_at), Some(stand_in_at)) = (
            only_occurrence(&head, EMPTY_TEXT),
            only_occurrence(&head, stand_in),
        ) && text_at < stand_in_at
            && stand_in.starts_with(KEY)
        {
            // The empty string `""` ends the text member.
            let empty = text_at + EMPTY_TEXT.len() - 2;
            let mut line = Vec::with_capacity(head.len() + 2 * text.len() + text.len() / 4 + 1);
            line.extend_from_slice(&head[..empty]);
            write_json_string(&mut line, &text);
            line.extend_from_slice(&head[empty + 2..stand_in_at + KEY.len()]);
            line.extend_from_slice(text.as_bytes());
            line.extend_from_slice(&head[stand_in_at + stand_in.len()..]);
            line.push(b'\n');
            return Ok(line);
        }
        if let JsonRpcMessage::Response(JsonRpcResponse {
            result: ServerResult::CallToolResult(result),
            ..
        }) = &mut msg
            && let Some(rmcp::model::ContentBlock::Text(block)) = result.content.first_mut()
        {
            block.text = text;
        }
    }
    if let JsonRpcMessage::Response(JsonRpcResponse {
        result: ServerResult::CallToolResult(result),
        ..
    }) = &mut msg
    {
        tools::fill_structured_content(result);
    }
    let mut bytes = serde_json::to_vec(&msg)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// `s` as a JSON string, byte for byte as serde_json writes it (`\"`, `\\`, `\b \f \n \r \t`,
/// other control characters as `\u00xx`).
///
/// A record list's text has a quote every few bytes, and no control characters (it is compact
/// JSON). So the output gets room for every byte escaped, and the text is copied eight bytes
/// at a time ([`write_json_words`]). 0.18 M instructions for the text of 100 demo records,
/// against 0.32 M byte by byte. A text with a control character is written byte by byte
/// ([`write_json_string_bytewise`]).
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    let base = out.len();
    if write_json_words(out, s).is_none() {
        out.truncate(base);
        write_json_string_bytewise(out, s);
    }
}

/// [`write_json_string`] eight bytes at a time: each word is appended whole, then cut back to
/// its first byte to escape (if any, by the string scan's word test), which is appended with its
/// escape. Room for every byte escaped is taken first, so no append moves the buffer. `None`,
/// with `out` to be cut back, for a text with a control character.
fn write_json_words(out: &mut Vec<u8>, s: &str) -> Option<()> {
    use crate::airtable::not_plain as to_escape;
    let bytes = s.as_bytes();
    out.reserve(2 * bytes.len() + 2);
    out.push(b'"');
    let mut i = 0usize;
    while let Some(word) = bytes.get(i..i + 8)
        && let Ok(word) = <[u8; 8]>::try_from(word)
    {
        out.extend_from_slice(&word);
        let mask = to_escape(u64::from_le_bytes(word));
        if mask == 0 {
            i += 8;
            continue;
        }
        let k = (mask.trailing_zeros() / 8) as usize;
        let b = word[k];
        if b < 0x20 {
            return None;
        }
        out.truncate(out.len() - (8 - k));
        out.extend_from_slice(&[b'\\', b]);
        i += k + 1;
    }
    for &b in bytes.get(i..).unwrap_or_default() {
        if b < 0x20 {
            return None;
        }
        if matches!(b, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    Some(())
}

/// [`write_json_string`] one byte at a time: any text, control characters included.
fn write_json_string_bytewise(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    /// Per byte: 0 when it is written as it is, else the letter after its backslash (`u` for
    /// `\u00xx`).
    const ESCAPE: [u8; 256] = {
        let mut table = [0u8; 256];
        let mut b = 0;
        while b < 0x20 {
            table[b] = b'u';
            b += 1;
        }
        table[0x08] = b'b';
        table[0x09] = b't';
        table[0x0a] = b'n';
        table[0x0c] = b'f';
        table[0x0d] = b'r';
        table[b'"' as usize] = b'"';
        table[b'\\' as usize] = b'\\';
        table
    };
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + bytes.len() / 4 + 2);
    out.push(b'"');
    for &b in bytes {
        match ESCAPE[usize::from(b)] {
            0 => out.push(b),
            b'u' => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
            letter => out.extend_from_slice(&[b'\\', letter]),
        }
    }
    out.push(b'"');
}

/// Where `needle` starts in `hay`, when it occurs exactly once.
fn only_occurrence(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut at = memchr::memmem::find_iter(hay, needle);
    match (at.next(), at.next()) {
        (Some(i), None) => Some(i),
        _ => None,
    }
}

/// Where the `]` of the one `"tools":[]` of `head` is. `"tools":[]` can only be a key and its
/// array (inside a JSON string the quote after `tools` would be escaped); `None` unless it occurs
/// exactly once.
fn empty_tools_end(head: &[u8]) -> Option<usize> {
    const EMPTY: &[u8] = b"\"tools\":[]";
    let mut at = head
        .windows(EMPTY.len())
        .enumerate()
        .filter(|(_, w)| *w == EMPTY)
        .map(|(i, _)| i + EMPTY.len() - 1);
    match (at.next(), at.next()) {
        (Some(close), None) => Some(close),
        _ => None,
    }
}

fn is_initialize_answer(msg: &ServerJsonRpcMessage) -> bool {
    matches!(
        msg,
        JsonRpcMessage::Response(JsonRpcResponse {
            result: ServerResult::InitializeResult(_),
            ..
        })
    )
}

async fn write_message<W: AsyncWrite + Unpin>(
    write: &Mutex<Option<W>>,
    msg: ServerJsonRpcMessage,
) -> std::io::Result<()> {
    let bytes = encode(msg).map_err(std::io::Error::other)?;
    let mut guard = write.lock().await;
    let Some(w) = guard.as_mut() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the transport is closed",
        ));
    };
    w.write_all(&bytes).await?;
    w.flush().await
}

impl<R, W> Transport<RoleServer> for StdioTransport<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let write = self.write.clone();
        let hook = if is_initialize_answer(&item) {
            None
        } else {
            self.after_start_up.take()
        };
        async move {
            write_message(&write, item).await?;
            if let Some(run) = hook {
                run();
            }
            Ok(())
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            match self.read_line().await {
                LineRead::Line => {}
                LineRead::Oversized(prefix) => {
                    tracing::warn!(
                        max_bytes = self.max,
                        "refused a message over the size limit on stdin"
                    );
                    self.answer_error(
                        ErrorCode::INVALID_REQUEST,
                        format!(
                            "Invalid request: the message is larger than {} bytes; send smaller \
                             requests (e.g. fewer records per call)",
                            self.max
                        ),
                        recover_id(&prefix),
                    );
                    continue;
                }
                LineRead::Eof => return None,
                LineRead::Io(e) => {
                    tracing::error!(error = %e, "cannot read stdin");
                    return None;
                }
            }
            let raw = std::mem::take(&mut self.line);
            let mut line = raw.strip_suffix(b"\n").unwrap_or(&raw);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<ClientJsonRpcMessage>(line) {
                Ok(msg) => return Some(msg),
                Err(e) => {
                    tracing::debug!(error = %e, "unusable message on stdin");
                    if let Some((code, message, id)) = Self::classify(line) {
                        self.answer_error(code, message, id);
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        let mut guard = self.write.lock().await;
        if let Some(mut w) = guard.take() {
            w.shutdown().await?;
        }
        Ok(())
    }
}

/// The `id` member of a JSON object, read from the start of its text (which may be cut off
/// or invalid further on): top-level keys are walked, nested values skipped without
/// recursion. `None` when the id is absent, not a number or string, or not in `buf`.
pub fn recover_id(buf: &[u8]) -> Option<RequestId> {
    let buf = buf.strip_prefix(UTF8_BOM).unwrap_or(buf);
    let mut i = skip_ws(buf, 0);
    if buf.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(buf, i);
        if buf.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(buf, i)?;
        let key = buf.get(i..key_end)?;
        i = skip_ws(buf, key_end);
        if buf.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(buf, i + 1);
        let value_end = skip_value(buf, i)?;
        if key == b"\"id\"" {
            return serde_json::from_slice::<RequestId>(buf.get(i..value_end)?).ok();
        }
        i = skip_ws(buf, value_end);
        match buf.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while buf.get(i).is_some_and(|b| b" \t\r\n".contains(b)) {
        i += 1;
    }
    i
}

/// `buf[i]` is `"`: the index just past the closing quote.
fn skip_string(buf: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match buf.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// The index just past the value starting at `i` (which must end inside `buf`).
fn skip_value(buf: &[u8], i: usize) -> Option<usize> {
    match buf.get(i)? {
        b'"' => skip_string(buf, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match buf.get(j)? {
                    b'"' => {
                        j = skip_string(buf, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while let Some(b) = buf.get(j) {
                if b",}] \t\r\n".contains(b) {
                    return (j > i).then_some(j);
                }
                j += 1;
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    type Duplex = tokio::io::DuplexStream;

    /// `encode` writes exactly what serialising the message writes, spliced or not.
    #[test]
    fn a_tools_list_answer_is_encoded_as_its_serialisation() {
        use rmcp::model::{ListToolsResult, NumberOrString};
        let all = crate::tools::router().list_all();
        assert!(all.len() > 30);
        let mut changed = all[3].clone();
        changed.description = Some("not the catalogue's \"tools\":[] text".into());
        let mut mixed = all.clone();
        mixed[3] = changed;
        let ids = [
            RequestId::Number(7),
            RequestId::String("\"tools\":[]".into()),
            NumberOrString::String("x".into()),
        ];
        assert_eq!(
            empty_tools_end(br#"{"id":1,"result":{"tools":[]}}"#),
            Some(27)
        );
        assert_eq!(
            empty_tools_end(br#"{"id":"\"tools\":[]","result":{"tools":[]}}"#),
            Some(40)
        );
        assert_eq!(empty_tools_end(br#"{"a":{"tools":[]},"tools":[]}"#), None);
        assert_eq!(empty_tools_end(br#"{"tools":[1]}"#), None);
        // Stand-ins are written as the tools they stand for.
        let names: Vec<&str> = all.iter().map(|t| t.name.as_ref()).collect();
        let stand_ins = crate::tools::catalogue::placeholders(names).unwrap();
        for id in &ids {
            let msg = |tools| {
                ServerJsonRpcMessage::response(
                    ServerResult::ListToolsResult(ListToolsResult::with_all_items(tools)),
                    id.clone(),
                )
            };
            let mut expected = serde_json::to_vec(&msg(all.clone())).unwrap();
            expected.push(b'\n');
            assert_eq!(
                String::from_utf8(encode(msg(stand_ins.clone())).unwrap()).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
        for tools in [all.clone(), mixed, vec![all[0].clone()], vec![]] {
            for id in &ids {
                let mut result = ListToolsResult::with_all_items(tools.clone());
                result.next_cursor = Some("c".into());
                let msg = ServerJsonRpcMessage::response(
                    ServerResult::ListToolsResult(result),
                    id.clone(),
                );
                let mut expected = serde_json::to_vec(&msg).unwrap();
                expected.push(b'\n');
                assert_eq!(
                    String::from_utf8(encode(msg).unwrap()).unwrap(),
                    String::from_utf8(expected).unwrap()
                );
            }
        }
    }

    /// A result known by its JSON text is written with that text as its structured content,
    /// whatever the text holds; the same message as one whose structured content is the text
    /// parsed.
    #[test]
    fn a_result_known_by_its_text_carries_it_as_structured_content() {
        let stand_in = crate::tools::structured_stand_in_json();
        let texts = [
            json!({"count": 0, "rows": []}).to_string(),
            json!({"a": "x\"y\\", "b": [1, 2.5, null], "c": {"d": "\u{e9}\n"}}).to_string(),
            // The stand-in's own bytes as data: inside strings they are escaped.
            json!({"note": stand_in, "k": {"structuredContent": {"x": true}}}).to_string(),
        ];
        let meta_with_stand_in: rmcp::model::MetaObject =
            serde_json::from_value(json!({"x": {"structuredContent": {
                "airtable-mcp:structured-content-is-the-text": true}}}))
            .unwrap();
        // An empty text member elsewhere: the text's place is no longer known.
        let meta_with_empty_text: rmcp::model::MetaObject =
            serde_json::from_value(json!({"y": {"type": "text", "text": ""}})).unwrap();
        for text in &texts {
            for id in [RequestId::Number(3), RequestId::String(stand_in.into())] {
                for meta in [
                    None,
                    Some(meta_with_stand_in.clone()),
                    Some(meta_with_empty_text.clone()),
                ] {
                    let mut result = crate::tools::text_structured_result(text.clone());
                    result.meta = meta.clone();
                    assert_eq!(crate::tools::structured_text(&result), Some(text.as_str()));
                    let msg = |r| {
                        ServerJsonRpcMessage::response(ServerResult::CallToolResult(r), id.clone())
                    };
                    let line = encode(msg(result.clone())).unwrap();
                    assert_eq!(line.last(), Some(&b'\n'));
                    let got: Value = serde_json::from_slice(&line).unwrap();
                    let mut filled = result;
                    crate::tools::fill_structured_content(&mut filled);
                    let want = serde_json::to_value(msg(filled)).unwrap();
                    assert_eq!(got, want, "{text}");
                    let structured: Value = serde_json::from_str(text).unwrap();
                    assert_eq!(got["result"]["structuredContent"], structured);
                    assert_eq!(got["result"]["content"][0]["text"], json!(text));
                    if meta.is_none() {
                        // Spliced: the text itself, byte for byte.
                        let needle = format!("\"structuredContent\":{text}");
                        assert!(String::from_utf8(line).unwrap().contains(&needle));
                    }
                }
            }
        }
        // Anything else is written as it is.
        let plain = rmcp::model::CallToolResult::structured(json!({
            "airtable-mcp:structured-content-is-the-text": false}));
        assert_eq!(crate::tools::structured_text(&plain), None);
        let msg = ServerJsonRpcMessage::response(
            ServerResult::CallToolResult(plain),
            RequestId::Number(1),
        );
        let mut expected = serde_json::to_vec(&msg).unwrap();
        expected.push(b'\n');
        assert_eq!(encode(msg).unwrap(), expected);
    }

    /// A transport over in-memory pipes: (transport, client's writer, client's line reader).
    fn pipe(
        max: usize,
    ) -> (
        StdioTransport<Duplex, Duplex>,
        Duplex,
        tokio::io::Lines<BufReader<Duplex>>,
    ) {
        let (client_w, server_r) = tokio::io::duplex(1 << 16);
        let (server_w, client_r) = tokio::io::duplex(1 << 16);
        let t = StdioTransport::with_max_message_bytes(server_r, server_w, max);
        (t, client_w, BufReader::new(client_r).lines())
    }

    async fn next_json(lines: &mut tokio::io::Lines<BufReader<Duplex>>) -> Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        serde_json::from_str(&line).unwrap()
    }

    fn ping(id: u64) -> String {
        json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string()
    }

    #[tokio::test]
    async fn the_start_up_hook_runs_once_after_the_first_answer_that_follows_initialize() {
        let (t, _w, mut out) = pipe(MAX_MESSAGE_BYTES);
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = runs.clone();
        let mut t = t.after_start_up(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let runs_now = || runs.load(std::sync::atomic::Ordering::SeqCst);
        let initialize = ServerJsonRpcMessage::response(
            ServerResult::InitializeResult(Default::default()),
            RequestId::Number(1),
        );
        t.send(initialize).await.unwrap();
        next_json(&mut out).await;
        assert_eq!(runs_now(), 0, "not after the initialize answer");
        for id in 2..5 {
            let answer =
                ServerJsonRpcMessage::response(ServerResult::empty(()), RequestId::Number(id));
            t.send(answer).await.unwrap();
            let line = next_json(&mut out).await;
            assert_eq!(line["id"], id, "{line}");
            assert_eq!(runs_now(), 1, "once, after the answer {id} was written");
        }
    }

    #[test]
    fn ids_are_recovered_from_the_start_of_a_message() {
        let n = |i: i64| Some(RequestId::Number(i));
        assert_eq!(
            recover_id(br#"{"jsonrpc":"2.0","id":7,"method":"x"}"#),
            n(7)
        );
        assert_eq!(
            recover_id(br#" {"params":{"a":[1,{"id":3}],"s":"}\"{"}, "id" : "abc", "#),
            Some(RequestId::String("abc".into()))
        );
        // cut off inside params, id first: found; id after the cut: not
        assert_eq!(
            recover_id(br#"{"id":12,"method":"tools/call","params":{"x":"aaaa"#),
            n(12)
        );
        assert_eq!(
            recover_id(br#"{"method":"tools/call","params":{"x":"aaaa"#),
            None
        );
        // a number cut off at the end of the buffer is not trusted
        assert_eq!(recover_id(br#"{"id":12"#), None);
        assert_eq!(recover_id(br#"{"id":null}"#), None);
        assert_eq!(recover_id(br#"{"id":{"a":1}}"#), None);
        assert_eq!(recover_id(b"[1,2]"), None);
        assert_eq!(recover_id(b"not json"), None);
    }

    #[tokio::test]
    async fn an_oversized_line_gets_an_error_with_its_id() {
        let (mut t, mut w, mut out) = pipe(1024);
        let big = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call",
                         "params": {"name": "x", "arguments": {"blob": "a".repeat(5000)}}});
        let writer = tokio::spawn(async move {
            w.write_all(format!("{big}\n{}\n", ping(42)).as_bytes())
                .await
                .unwrap();
            w
        });
        // The oversized line is answered, and the next message still comes through.
        let msg = t.receive().await.unwrap();
        assert!(
            matches!(&msg, ClientJsonRpcMessage::Request(r) if r.id == RequestId::Number(42)),
            "{msg:?}"
        );
        let err = next_json(&mut out).await;
        assert_eq!(err["id"], 41, "{err}");
        assert_eq!(err["error"]["code"], -32600, "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("larger than 1024 bytes")
        );
        drop(writer.await.unwrap());
        assert!(t.receive().await.is_none());
    }

    #[tokio::test]
    async fn malformed_lines_get_parse_and_invalid_request_errors() {
        let (mut t, mut w, mut out) = pipe(MAX_MESSAGE_BYTES);
        let input = [
            r#"{"jsonrpc":"2.0","id":5,"method":"ping""#.to_owned(), // cut short: -32700, id 5
            "garbage".to_owned(),                                    // -32700, no id
            r#"{"jsonrpc":"2.0","id":"s6","method":5}"#.to_owned(),  // -32600, id "s6"
            r#"{"id":7}"#.to_owned(),                                // -32600, id 7
            r#"{"jsonrpc":"2.0","method":"no/such/notification","params":3}"#.to_owned(), // ignored
            ping(8),
        ];
        w.write_all(format!("{}\n", input.join("\n")).as_bytes())
            .await
            .unwrap();
        let msg = t.receive().await.unwrap();
        assert!(
            matches!(&msg, ClientJsonRpcMessage::Request(r) if r.id == RequestId::Number(8)),
            "{msg:?}"
        );
        let mut got = Vec::new();
        for _ in 0..4 {
            let e = next_json(&mut out).await;
            got.push((e["error"]["code"].clone(), e.get("id").cloned()));
        }
        got.sort_by_key(|(c, id)| format!("{c}{id:?}"));
        let mut want = vec![
            (json!(-32700), Some(json!(5))),
            (json!(-32700), None),
            (json!(-32600), Some(json!("s6"))),
            (json!(-32600), Some(json!(7))),
        ];
        want.sort_by_key(|(c, id)| format!("{c}{id:?}"));
        assert_eq!(got, want);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The JSON string writer writes what serde_json writes, for any text.
        #[test]
        fn json_strings_are_written_as_serde_json_writes_them(s in "(?s).{0,64}", bytes in proptest::collection::vec(0u8..0x80, 0..64)) {
            let ascii = String::from_utf8(bytes).unwrap();
            for text in [s.as_str(), ascii.as_str()] {
                let mut out = Vec::new();
                write_json_string(&mut out, text);
                prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(text).unwrap());
            }
        }

        /// Texts dense in quotes, backslashes and other characters to escape, at every offset
        /// from the word boundaries, after bytes already in the buffer.
        #[test]
        fn dense_json_strings_are_written_as_serde_json_writes_them(
            text in proptest::collection::vec(
                proptest::sample::select(vec!["\"", "\\", "a", "bc", "\u{1}", "\n", "é", "😀", "\u{7f}", "abcdefgh"]),
                0..80,
            ),
            before in 0usize..9,
        ) {
            let text = text.concat();
            let mut out = vec![b'x'; before];
            write_json_string(&mut out, &text);
            let mut want = vec![b'x'; before];
            want.extend_from_slice(serde_json::to_string(&text).unwrap().as_bytes());
            prop_assert_eq!(out, want);
        }

        /// Random bytes never panic the scanner.
        #[test]
        fn recover_id_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = recover_id(&bytes);
        }

        /// Random lines into the transport: no panic, every valid request comes through, and
        /// every line that is a request with an id but is cut short or too long is answered
        /// with that id.
        #[test]
        fn framing_answers_every_recoverable_id(
            lines in proptest::collection::vec(
                prop_oneof![
                    (0u32..1000).prop_map(|i| (0u8, i)),
                    (0u32..1000).prop_map(|i| (1u8, i)),
                    (0u32..1000).prop_map(|i| (2u8, i)),
                    (0u32..1000).prop_map(|i| (3u8, i)),
                ],
                1..12,
            ),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (mut t, mut w, mut out) = pipe(600);
                let mut text = String::new();
                let mut valid = Vec::new();
                let mut answered = Vec::new();
                // random junk first (no newline inside, so it is one line)
                let junk: Vec<u8> = junk.into_iter().filter(|b| *b != b'\n').collect();
                let junk = String::from_utf8_lossy(&junk).into_owned();
                text.push_str(&junk);
                text.push('\n');
                for (kind, i) in lines {
                    let id = i64::from(i) + 1000;
                    match kind {
                        0 => { text.push_str(&ping(id as u64)); valid.push(id); }
                        1 => { text.push_str(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping","#)); answered.push(id); }
                        2 => { text.push_str(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"x":"{}"}}}}"#, "b".repeat(700))); answered.push(id); }
                        _ => { text.push_str(&format!(r#"{{"id":{id}}}"#)); answered.push(id); }
                    }
                    text.push('\n');
                }
                let writer = tokio::spawn(async move {
                    w.write_all(text.as_bytes()).await.unwrap();
                    drop(w);
                });
                let mut seen = Vec::new();
                while let Some(msg) = t.receive().await {
                    if let ClientJsonRpcMessage::Request(r) = msg
                        && let RequestId::Number(n) = r.id
                    {
                        seen.push(n);
                    }
                }
                writer.await.unwrap();
                // Every id of a broken message is answered (the junk line may add one more
                // answer, without an id of ours).
                let mut ids = Vec::new();
                for _ in 0..=answered.len() {
                    if ids.len() == answered.len() {
                        break;
                    }
                    let e = next_json(&mut out).await;
                    if let Some(n) = e.get("id").and_then(Value::as_i64).filter(|n| *n >= 1000) {
                        ids.push(n);
                    }
                }
                ids.sort_unstable();
                answered.sort_unstable();
                assert_eq!(seen, valid);
                assert_eq!(ids, answered);
            });
        }
    }
}
