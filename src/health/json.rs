//! `/healthCheck` body judgement: a tiny tolerant scanner for a flat JSON
//! object (no serde, no allocation). See [`evaluate_response`] for the contract.

use super::{FailReason, LoadReport, ProbeOutcome};

/// Judges a `/healthCheck` response (pure).
///
/// Healthy iff `status == 200` and, when the body is a JSON object with a
/// `"status"` member, that member is `200` or `"200"` (the seed's contract;
/// both spellings). Optional numeric `"cpu"`, `"memory"` (percent, clamped
/// 0..=100) and `"weight"` (integer >= 0; fractions round) members fill the
/// [`LoadReport`]; numeric strings (`"42.5"`) are accepted too. Duplicate
/// members: the last wins. A body that is not a JSON object is healthy with an
/// empty report. Tolerant: on a syntax error, members read before it still
/// count and the rest of the body is ignored.
pub fn evaluate_response(status: u16, body: &[u8]) -> ProbeOutcome {
    if status != 200 {
        return ProbeOutcome::Unhealthy(FailReason::Status(status));
    }
    let mut fields = Fields::default();
    // A syntax error only ends the scan; see the tolerance rule above.
    let _ = scan_object(body, &mut fields);
    if fields.status_ok == Some(false) {
        return ProbeOutcome::Unhealthy(FailReason::JsonStatus);
    }
    ProbeOutcome::Healthy {
        report: fields.report,
    }
}

/// Interesting members found so far.
#[derive(Default)]
struct Fields {
    status_ok: Option<bool>,
    report: LoadReport,
}

impl Fields {
    fn record(&mut self, key: &Token, value: &Value) {
        match key.bytes() {
            Some(b"status") => self.status_ok = Some(value.is_200()),
            Some(b"cpu") => self.report.cpu = value.number().and_then(percent),
            Some(b"memory") => self.report.memory = value.number().and_then(percent),
            Some(b"weight") => self.report.weight = value.number().and_then(weight),
            _ => {}
        }
    }
}

fn percent(n: f64) -> Option<f32> {
    n.is_finite().then(|| n.clamp(0.0, 100.0) as f32)
}

fn weight(n: f64) -> Option<u32> {
    // `as` saturates large values at u32::MAX; clamped later anyway.
    (n.is_finite() && n >= 0.0).then(|| n.round() as u32)
}

/// Longest JSON string kept for comparison; longer ones are only skipped.
const TOKEN_MAX: usize = 24;

/// A decoded JSON string, kept only if short and ASCII-escaped.
struct Token {
    buf: [u8; TOKEN_MAX],
    len: usize,
    overflow: bool,
}

impl Token {
    fn new() -> Token {
        Token {
            buf: [0; TOKEN_MAX],
            len: 0,
            overflow: false,
        }
    }

    fn push(&mut self, b: u8) {
        match self.buf.get_mut(self.len) {
            Some(slot) if !self.overflow => {
                *slot = b;
                self.len += 1;
            }
            _ => self.overflow = true,
        }
    }

    fn bytes(&self) -> Option<&[u8]> {
        (!self.overflow).then_some(&self.buf[..self.len])
    }
}

enum Value {
    Number(f64),
    Str(Token),
    /// true, false, null, object or array.
    Other,
}

impl Value {
    fn is_200(&self) -> bool {
        match self {
            Value::Number(n) => *n == 200.0,
            Value::Str(t) => t.bytes() == Some(b"200"),
            Value::Other => false,
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Str(t) => std::str::from_utf8(t.bytes()?).ok()?.trim().parse().ok(),
            Value::Other => None,
        }
    }
}

/// A JSON syntax error; scanning stops there.
struct Malformed;

/// Reads a flat JSON object member by member, recording interesting ones.
fn scan_object(body: &[u8], fields: &mut Fields) -> Result<(), Malformed> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut s = Scanner {
        bytes: body,
        pos: 0,
    };
    s.skip_ws();
    if s.next() != Some(b'{') {
        return Ok(()); // not JSON: nothing to record
    }
    s.skip_ws();
    if s.peek() == Some(b'}') {
        return Ok(());
    }
    loop {
        s.skip_ws();
        let key = s.string()?;
        s.skip_ws();
        if s.next() != Some(b':') {
            return Err(Malformed);
        }
        s.skip_ws();
        let value = s.value()?;
        fields.record(&key, &value);
        s.skip_ws();
        match s.next() {
            Some(b',') => continue,
            Some(b'}') => return Ok(()),
            _ => return Err(Malformed),
        }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, Malformed> {
        match self.peek().ok_or(Malformed)? {
            b'"' => Ok(Value::Str(self.string()?)),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            b'{' | b'[' => self.skip_nested().map(|()| Value::Other),
            b't' => self.literal(b"true").map(|()| Value::Other),
            b'f' => self.literal(b"false").map(|()| Value::Other),
            b'n' => self.literal(b"null").map(|()| Value::Other),
            _ => Err(Malformed),
        }
    }

    /// A string starting at its opening quote (RFC 8259 §7 escapes).
    fn string(&mut self) -> Result<Token, Malformed> {
        if self.next() != Some(b'"') {
            return Err(Malformed);
        }
        let mut token = Token::new();
        loop {
            match self.next().ok_or(Malformed)? {
                b'"' => return Ok(token),
                b'\\' => self.escape(&mut token)?,
                b => token.push(b),
            }
        }
    }

    fn escape(&mut self, token: &mut Token) -> Result<(), Malformed> {
        let decoded = match self.next().ok_or(Malformed)? {
            b @ (b'"' | b'\\' | b'/') => b,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hex = self.bytes.get(self.pos..self.pos + 4).ok_or(Malformed)?;
                let hex = std::str::from_utf8(hex).map_err(|_| Malformed)?;
                let code = u16::from_str_radix(hex, 16).map_err(|_| Malformed)?;
                self.pos += 4;
                // Only ASCII matters for the member names we compare; anything
                // else (surrogate halves included) just makes the token unusable.
                match u8::try_from(code) {
                    Ok(b) if b.is_ascii() => b,
                    _ => {
                        token.overflow = true;
                        return Ok(());
                    }
                }
            }
            _ => return Err(Malformed),
        };
        token.push(decoded);
        Ok(())
    }

    fn number(&mut self) -> Result<f64, Malformed> {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).map_err(|_| Malformed)?;
        text.parse().map_err(|_| Malformed)
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Malformed> {
        if !self.bytes[self.pos..].starts_with(word) {
            return Err(Malformed);
        }
        self.pos += word.len();
        Ok(())
    }

    /// Skips an object or array (bracket depth only; contents unchecked).
    fn skip_nested(&mut self) -> Result<(), Malformed> {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy(cpu: Option<f32>, memory: Option<f32>, weight: Option<u32>) -> ProbeOutcome {
        ProbeOutcome::Healthy {
            report: LoadReport {
                cpu,
                memory,
                weight,
            },
        }
    }

    const OK: ProbeOutcome = ProbeOutcome::Healthy {
        report: LoadReport {
            cpu: None,
            memory: None,
            weight: None,
        },
    };
    const BAD_JSON_STATUS: ProbeOutcome = ProbeOutcome::Unhealthy(FailReason::JsonStatus);

    macro_rules! judge {
        ($($status:expr, $body:expr => $expected:expr;)+) => {$(
            assert_eq!(
                evaluate_response($status, $body),
                $expected,
                "status {} body {:?}",
                $status,
                String::from_utf8_lossy($body)
            );
        )+};
    }

    #[test]
    fn status_contract() {
        judge! {
            200, br#"{"status":"200"}"# => OK;
            200, br#"{"status":200}"# => OK;
            200, br#"{"status":200.0}"# => OK;
            200, br#" { "status" : "200" } "# => OK;
            200, b"\xEF\xBB\xBF{\"status\":\"200\"}" => OK;
            200, br#"{"status":"503"}"# => BAD_JSON_STATUS;
            200, br#"{"status":503}"# => BAD_JSON_STATUS;
            200, br#"{"status":" 200"}"# => BAD_JSON_STATUS;
            200, br#"{"status":null}"# => BAD_JSON_STATUS;
            200, br#"{"status":true}"# => BAD_JSON_STATUS;
            200, br#"{"status":{"code":200}}"# => BAD_JSON_STATUS;
            200, br#"{"status":"200","status":"500"}"# => BAD_JSON_STATUS;
            200, br#"{"status":"500","status":200}"# => OK;
            503, br#"{"status":"200"}"# => ProbeOutcome::Unhealthy(FailReason::Status(503));
            204, b"" => ProbeOutcome::Unhealthy(FailReason::Status(204));
            500, b"oops" => ProbeOutcome::Unhealthy(FailReason::Status(500));
        }
    }

    #[test]
    fn non_json_and_empty_bodies_are_healthy() {
        judge! {
            200, b"" => OK;
            200, b"OK" => OK;
            200, b"<html>fine</html>" => OK;
            200, b"[200]" => OK;
            200, b"{}" => OK;
            200, b"  {  }  " => OK;
            200, br#"{"ok":true,"count":3}"# => OK;
        }
    }

    #[test]
    fn nested_values_and_escapes_are_skipped() {
        judge! {
            200, br#"{"info":{"status":"500","x":[1,{"y":"}"}]},"status":"200"}"# => OK;
            200, br#"{"list":[{"status":503}],"status":200}"# => OK;
            200, br#"{"info":{"status":"200"},"status":"503"}"# => BAD_JSON_STATUS;
            200, br#"{"msg":"say \"status\": 503 \\","status":"200"}"# => OK;
            200, br#"{"st\u0061tus":"503"}"# => BAD_JSON_STATUS;
            200, br#"{"status":"\u0032\u00300"}"# => OK;
            200, br#"{"caf\u00e9":"x","status":"200"}"# => OK;
            200, br#"{"a\nb\t\/\b\f\r":1,"status":200}"# => OK;
            200, br#"{"a-very-long-member-name-that-overflows":"x","status":200}"# => OK;
            200, br#"{"status":"200000000000000000000000000000"}"# => BAD_JSON_STATUS;
        }
    }

    #[test]
    fn load_numbers_are_parsed() {
        judge! {
            200, br#"{"status":"200","cpu":42.5,"memory":"61"}"# => healthy(Some(42.5), Some(61.0), None);
            200, br#"{"cpu":-3,"memory":1e3}"# => healthy(Some(0.0), Some(100.0), None);
            200, br#"{"weight":7}"# => healthy(None, None, Some(7));
            200, br#"{"weight":"12"}"# => healthy(None, None, Some(12));
            200, br#"{"weight":2.6}"# => healthy(None, None, Some(3));
            200, br#"{"weight":-1,"cpu":true,"memory":null}"# => OK;
            200, br#"{"weight":1e300}"# => healthy(None, None, Some(u32::MAX));
            200, br#"{"cpu":"busy","memory":[50]}"# => OK;
            200, br#"{"cpu":10,"cpu":20}"# => healthy(Some(20.0), None, None);
            200, br#"{"CPU":10}"# => OK;
            // \u escapes are code points, not bytes: U+00C2 U+00A0 is not the UTF-8 of
            // a no-break space, so this is no number (read as bytes it would trim to 42).
            200, br#"{"cpu":"42\u00c2\u00a0"}"# => OK;
        }
    }

    #[test]
    fn garbage_keeps_members_read_before_the_error() {
        judge! {
            200, br#"{"cpu":10,"memory":20"# => healthy(Some(10.0), Some(20.0), None);
            200, br#"{"status":"503", oops"# => BAD_JSON_STATUS;
            200, br#"{"status":"200" "cpu":5}"# => OK;
            200, br#"{"cpu":12,}"# => healthy(Some(12.0), None, None);
            200, br#"{"cpu":1-2-3,"status":503}"# => OK;
            200, br#"{"cpu":5,"status":"50"# => healthy(Some(5.0), None, None);
            200, br#"{"a":tru,"status":503}"# => OK;
            200, br#"{"a":{"b":[1,2}"# => OK;
            200, br#"{"a":"\x","status":503}"# => OK;
            200, br#"{"a":"\u12"}"# => OK;
            200, br#"{status:503}"# => OK;
            200, b"{\"status\":\"200\"\xff\xfe" => OK;
            200, b"{" => OK;
            200, b"{\"" => OK;
        }
    }

    #[test]
    fn every_truncation_is_judged_without_panic() {
        let body =
            br#"{"status":"200","nested":{"a":[1,"x\"y",{}]},"cpu":12.5e0,"weight":3,"m":null}"#;
        for end in 0..=body.len() {
            match evaluate_response(200, &body[..end]) {
                ProbeOutcome::Healthy { .. } => {}
                other => panic!("prefix {end}: {other:?}"),
            }
        }
        assert_eq!(
            evaluate_response(200, body),
            healthy(Some(12.5), None, Some(3))
        );
    }

    #[test]
    fn whitespace_and_literals_before_a_bad_status_are_read_through() {
        // A bad status after whitespace or a literal must be found (not taken for an
        // early syntax error, which would leave the probe healthy).
        judge! {
            200, b" {\t\"status\" :\r\n503 } " => BAD_JSON_STATUS;
            200, br#"{"a" : false , "status" : "503"}"# => BAD_JSON_STATUS;
            200, br#"{"a":true,"b":false,"c":null,"status":503}"# => BAD_JSON_STATUS;
            200, br#"{"info":{"x":"}"},"list":["]"],"status":503}"# => BAD_JSON_STATUS;
        }
    }

    #[test]
    fn every_escape_is_decoded_not_an_error() {
        for escape in [
            "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u00e9", "\\u0041",
        ] {
            let body = format!(r#"{{"a{escape}b":1,"status":503}}"#);
            assert_eq!(
                evaluate_response(200, body.as_bytes()),
                BAD_JSON_STATUS,
                "{body}"
            );
        }
    }
}
