//! GL activities (`gllm_inference.schema.activity`): what a model did with a tool, read from the
//! value of an `activity` event as an [`Activity`].
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::filter`, `store::reads`,
//! `store::snapshot`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::GlEvent;
use crate::model::error::Result;
use crate::model::event::Level;
use crate::model::event::Sequence;
use crate::model::event_type::EventType;
use crate::model::filter::Query;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

/// A model-triggered activity, by its `type`.
///
/// ```
/// use oidb::observe::Activity;
/// use serde_json::json;
///
/// let value = json!({"type": "mcp_call", "server_name": "files", "tool_name": "read_file",
///                    "args": {"path": "notes.md"}});
/// match Activity::from_value(&value) {
///     Activity::McpCall { server_name, tool_name, .. } => assert_eq!((server_name.as_str(), tool_name.as_str()), ("files", "read_file")),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Activity {
    /// `mcp_call`: a tool called on an MCP server.
    McpCall {
        /// The MCP server.
        server_name: String,
        /// The tool.
        tool_name: String,
        /// Its arguments.
        args: Map<String, Value>,
    },
    /// `mcp_list_tools`: an MCP server's tools listed.
    McpListTools {
        /// The MCP server.
        server_name: String,
        /// The tools, when given.
        tools: Option<Vec<Value>>,
    },
    /// `search`: a web search.
    Search(WebActivity),
    /// `open_page`: a web page opened.
    OpenPage(WebActivity),
    /// `find_in_page`: a pattern looked for in a page.
    FindInPage(WebActivity),
    /// `web_search`: a web search, as newer GL versions name it.
    WebSearch(WebActivity),
    /// Any other activity, or one whose fields are not as GL writes them: its JSON, kept whole.
    Other(Value),
}

/// The fields of GL's web activities (`search`, `open_page`, `find_in_page`, `web_search`).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct WebActivity {
    /// The search query.
    pub query: Option<String>,
    /// The page's URL.
    pub url: Option<String>,
    /// The pattern looked for.
    pub pattern: Option<String>,
    /// The sources found.
    pub sources: Option<Vec<Value>>,
}

impl Activity {
    /// Reads an activity value; anything not shaped as GL writes it is [`Activity::Other`].
    #[must_use]
    pub fn from_value(value: &Value) -> Activity {
        Activity::typed(value).unwrap_or_else(|| Activity::Other(value.clone()))
    }

    fn typed(value: &Value) -> Option<Activity> {
        let object = value.as_object()?;
        let text = |key: &str| -> Option<Option<String>> {
            match object.get(key) {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(s)) => Some(Some(s.clone())),
                Some(_) => None,
            }
        };
        let list = |key: &str| -> Option<Option<Vec<Value>>> {
            match object.get(key) {
                None | Some(Value::Null) => Some(None),
                Some(Value::Array(items)) => Some(Some(items.clone())),
                Some(_) => None,
            }
        };
        let web = || -> Option<WebActivity> {
            Some(WebActivity {
                query: text("query")?,
                url: text("url")?,
                pattern: text("pattern")?,
                sources: list("sources")?,
            })
        };
        Some(match object.get("type")?.as_str()? {
            "mcp_call" => Activity::McpCall {
                server_name: text("server_name")??,
                tool_name: text("tool_name")??,
                args: match object.get("args") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(args)) => args.clone(),
                    Some(_) => return None,
                },
            },
            "mcp_list_tools" => Activity::McpListTools {
                server_name: text("server_name")?.unwrap_or_default(),
                tools: list("tools")?,
            },
            "search" => Activity::Search(web()?),
            "open_page" => Activity::OpenPage(web()?),
            "find_in_page" => Activity::FindInPage(web()?),
            "web_search" => Activity::WebSearch(web()?),
            _ => return None,
        })
    }

    /// The activity's `type` string.
    #[must_use]
    pub fn type_name(&self) -> &str {
        match self {
            Activity::McpCall { .. } => "mcp_call",
            Activity::McpListTools { .. } => "mcp_list_tools",
            Activity::Search(_) => "search",
            Activity::OpenPage(_) => "open_page",
            Activity::FindInPage(_) => "find_in_page",
            Activity::WebSearch(_) => "web_search",
            Activity::Other(value) => value.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }
}

/// An `activity` event of an intent, read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ActivityRecord {
    /// The GL id of the activity.
    pub id: Option<String>,
    /// What was done.
    pub activity: Activity,
    /// When.
    pub at: DateTime<Utc>,
    /// The event's severity.
    pub level: Level,
    /// The event's sequence in the intent.
    pub sequence: Sequence,
}

impl Snapshot {
    /// The intent's `activity` events, oldest first, as typed values.
    ///
    /// # Errors
    /// A storage error or a damaged record.
    pub fn activities(&self, intent_id: &str) -> Result<Vec<ActivityRecord>> {
        let query = Query::new()
            .intent(intent_id)
            .event_type(EventType::Activity);
        let mut records = Vec::new();
        for event in self.query_iter(&query)? {
            let event = event?;
            let Some(gl) = GlEvent::from_event(&event) else {
                continue;
            };
            records.push(ActivityRecord {
                id: gl.id,
                activity: Activity::from_value(&gl.value),
                at: gl.timestamp,
                level: gl.level,
                sequence: event.sequence,
            });
        }
        Ok(records)
    }
}

read_on_handles! {
    /// The intent's `activity` events, oldest first, as typed values.
    fn activities(&self, intent_id: &str) -> Result<Vec<ActivityRecord>>;
}
