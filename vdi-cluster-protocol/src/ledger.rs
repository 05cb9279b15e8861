//! The disruption ledger's bodies: a session's interruptions (in the
//! session's `GET`), an exam's students with lost time as JSON or CSV
//! (`GET /api/vdi/exams/{examId}/disruptions`), and the exam's lost-time
//! figures. Lost time is in seconds with milliseconds as decimals
//! (`lostSec`); instants are milliseconds since the epoch, as the
//! session's `reservedAt`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vdi_cluster_core::ValidationError;
use vdi_cluster_core::ledger::{Disruption, ExamLost, LedgerOrder, StudentLost, seconds};
use vdi_cluster_core::service::LostFigures;

/// One interruption of a student's session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisruptionJson {
    /// `workerLost`, `workerRestarted`, `startRetried`, `moved`,
    /// `waitingRoom`, `slowStart` or `refused`.
    pub kind: String,
    /// When the student lost their desktop (ms since the epoch).
    pub started_at: u64,
    /// When they had one again (ms since the epoch).
    pub ended_at: u64,
    /// The time this interruption spans on its own, seconds.
    pub lost_sec: f64,
    /// The workers involved: the one lost or left first, then the one
    /// that took the session.
    pub workers: Vec<String>,
    /// The id of the event that caused it (for a move, the new dispatch).
    pub cause: String,
}

impl From<&Disruption> for DisruptionJson {
    fn from(d: &Disruption) -> Self {
        Self {
            kind: d.kind.name().to_owned(),
            started_at: d.started_at.as_millis(),
            ended_at: d.ended_at.as_millis(),
            lost_sec: seconds(d.span_ms()),
            workers: d.workers.iter().map(ToString::to_string).collect(),
            cause: d.cause.clone(),
        }
    }
}

/// One student of an exam with lost time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StudentLostJson {
    /// The student.
    pub user_id: String,
    /// Their lost time, overlapping interruptions counted once, seconds.
    pub lost_sec: f64,
    /// The kinds of their interruptions, each once.
    pub kinds: Vec<String>,
    /// Every interruption, oldest first.
    pub disruptions: Vec<DisruptionJson>,
}

impl From<&StudentLost> for StudentLostJson {
    fn from(s: &StudentLost) -> Self {
        Self {
            user_id: s.key.user_id.to_string(),
            lost_sec: seconds(s.lost_ms),
            kinds: s.kinds().iter().map(|k| k.name().to_owned()).collect(),
            disruptions: s.entries.iter().map(DisruptionJson::from).collect(),
        }
    }
}

/// An exam's lost-time figures (in the exam's figures, and the ledger's
/// answer).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LostFiguresJson {
    /// Students with lost time.
    pub students_with_lost_time: u32,
    /// Their lost time added up, seconds.
    pub total_lost_sec: f64,
    /// The median over them, seconds.
    pub median_lost_sec: f64,
    /// The most one student lost, seconds.
    pub max_lost_sec: f64,
}

impl From<&LostFigures> for LostFiguresJson {
    fn from(f: &LostFigures) -> Self {
        Self {
            students_with_lost_time: f.students,
            total_lost_sec: seconds(f.total_ms),
            median_lost_sec: seconds(f.median_ms),
            max_lost_sec: seconds(f.max_ms),
        }
    }
}

/// `GET /api/vdi/exams/{examId}/disruptions` as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamDisruptionsJson {
    /// The exam.
    pub exam_id: String,
    /// Every student with lost time above zero, in the order asked for.
    pub students: Vec<StudentLostJson>,
    /// The exam's figures.
    #[serde(flatten)]
    pub figures: LostFiguresJson,
}

impl ExamDisruptionsJson {
    /// The body of `exam`'s ledger.
    pub fn new(exam_id: &str, exam: &ExamLost) -> Self {
        Self {
            exam_id: exam_id.to_owned(),
            students: exam.students.iter().map(StudentLostJson::from).collect(),
            figures: LostFiguresJson::from(&LostFigures::from(exam)),
        }
    }
}

/// The CSV export's header line.
pub const CSV_HEADER: &str = "userId,lostSec,kinds,disruptions,firstStartedAt,lastEndedAt";

/// The media type of the CSV export.
pub const CSV_MEDIA_TYPE: &str = "text/csv; charset=utf-8";

/// `exam`'s ledger as CSV (RFC 4180, CRLF line ends): [`CSV_HEADER`],
/// then one line per student in the list's order: the student, the lost
/// seconds, the kinds separated by `;`, how many interruptions, and the
/// first start and last end in ms since the epoch. A field that could be
/// read as a spreadsheet formula gets a leading `'`.
pub fn exam_csv(exam: &ExamLost) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push_str("\r\n");
    for s in &exam.students {
        let kinds: Vec<&str> = s.kinds().iter().map(|k| k.name()).collect();
        let first = s.entries.iter().map(|e| e.started_at.as_millis()).min();
        let last = s.entries.iter().map(|e| e.ended_at.as_millis()).max();
        let fields = [
            csv_field(s.key.user_id.as_str()),
            seconds(s.lost_ms).to_string(),
            kinds.join(";"),
            s.entries.len().to_string(),
            first.map(|t| t.to_string()).unwrap_or_default(),
            last.map(|t| t.to_string()).unwrap_or_default(),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One CSV field: quoted when it holds a comma, quote or line break
/// (quotes doubled), and defused when a spreadsheet would run it.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The query of `GET /api/vdi/exams/{examId}/disruptions`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DisruptionsQuery {
    /// The order: `-lostSec` (most lost first, the default), `lostSec`
    /// or `userId`.
    #[param(pattern = "^(-lostSec|lostSec|userId)$")]
    pub sort: Option<String>,
    /// `json` (the default) or `csv`; overrides the `Accept` header.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

/// The export's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerFormat {
    /// `application/json`.
    Json,
    /// `text/csv`.
    Csv,
}

impl DisruptionsQuery {
    /// The order asked for; an unknown one names `sort`.
    pub fn order(&self) -> Result<LedgerOrder, ValidationError> {
        match &self.sort {
            None => Ok(LedgerOrder::default()),
            Some(s) => LedgerOrder::parse(s)
                .ok_or_else(|| ValidationError::new("sort", "must be -lostSec, lostSec or userId")),
        }
    }

    /// The format: `format` if given, else CSV when `accept` prefers
    /// `text/csv` to JSON, else JSON. An unknown `format` names it.
    pub fn format(&self, accept: Option<&str>) -> Result<LedgerFormat, ValidationError> {
        match self.format.as_deref() {
            Some("json") => Ok(LedgerFormat::Json),
            Some("csv") => Ok(LedgerFormat::Csv),
            Some(_) => Err(ValidationError::new("format", "must be json or csv")),
            None => Ok(match accept {
                Some(a) if accepts_csv(a) => LedgerFormat::Csv,
                _ => LedgerFormat::Json,
            }),
        }
    }
}

/// Whether an `Accept` header names `text/csv` before any JSON type.
fn accepts_csv(accept: &str) -> bool {
    for part in accept.split(',') {
        let media = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "text/csv" => return true,
            "application/json" | "*/*" | "application/*" => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vdi_cluster_core::ledger::DisruptionKind;
    use vdi_cluster_core::{SessionKey, Timestamp, WorkerId};

    use super::*;

    fn exam() -> ExamLost {
        let key = |u: &str| SessionKey::parse("e1", u).unwrap();
        let w = |c: &str| WorkerId::parse("code", c).unwrap();
        ExamLost::from_entries(
            vec![
                Disruption::new(
                    key("u1"),
                    DisruptionKind::WorkerLost,
                    Timestamp(1_000),
                    Timestamp(13_500),
                    vec![w("w1"), w("w2")],
                    "d1",
                ),
                Disruption::new(
                    key("=cmd,\"x\""),
                    DisruptionKind::SlowStart,
                    Timestamp(0),
                    Timestamp(2_000),
                    vec![w("w2")],
                    "d2",
                ),
            ],
            LedgerOrder::LostDesc,
        )
    }

    #[test]
    fn the_json_names_its_fields() {
        let body = serde_json::to_value(ExamDisruptionsJson::new("e1", &exam())).unwrap();
        assert_eq!(body["examId"], "e1");
        assert_eq!(body["totalLostSec"], json!(14.5));
        assert_eq!(body["medianLostSec"], json!(2.0));
        assert_eq!(body["maxLostSec"], json!(12.5));
        assert_eq!(body["studentsWithLostTime"], 2);
        let first = &body["students"][0];
        assert_eq!(first["userId"], "u1");
        assert_eq!(first["lostSec"], json!(12.5));
        assert_eq!(first["kinds"], json!(["workerLost"]));
        assert_eq!(
            first["disruptions"][0],
            json!({"kind": "workerLost", "startedAt": 1000, "endedAt": 13500,
                   "lostSec": 12.5, "workers": ["w1", "w2"], "cause": "d1"})
        );
    }

    #[test]
    fn the_csv_quotes_and_defuses_its_fields() {
        let csv = exam_csv(&exam());
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[1], "u1,12.5,workerLost,1,1000,13500");
        assert_eq!(lines[2], "\"'=cmd,\"\"x\"\"\",2,slowStart,1,0,2000");
    }

    #[test]
    fn the_format_follows_the_parameter_then_the_accept_header() {
        let q = |format: Option<&str>| DisruptionsQuery {
            sort: None,
            format: format.map(str::to_owned),
        };
        assert_eq!(q(None).format(None).unwrap(), LedgerFormat::Json);
        assert_eq!(q(None).format(Some("text/csv")).unwrap(), LedgerFormat::Csv);
        assert_eq!(
            q(None).format(Some("application/json, text/csv")).unwrap(),
            LedgerFormat::Json
        );
        assert_eq!(
            q(Some("csv")).format(Some("application/json")).unwrap(),
            LedgerFormat::Csv
        );
        assert_eq!(q(Some("xml")).format(None).unwrap_err().field, "format");
        let bad = DisruptionsQuery {
            sort: Some("x".into()),
            format: None,
        };
        assert_eq!(bad.order().unwrap_err().field, "sort");
    }
}
