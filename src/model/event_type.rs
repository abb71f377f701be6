//! The type of an event: [`EventType`].
//!
//! [`EventType`] has a variant for every event type of the `OpenIntent`
//! protocol (the `EventType` enum of its Python SDK, `openintent/models.py`,
//! version 0.17.0), for a few wire strings the protocol's reference
//! implementation writes without listing them in that enum, and for the event
//! types of GL's LM invoker. Any other string is kept as
//! [`EventType::Custom`]: an unknown type is data, never an error.
//!
//! The wire string of each variant is written exactly once, in the
//! `event_types!` table below; the enum, [`EventType::as_str`],
//! [`EventType::parse`], [`EventType::known`] and [`EventType::is_gl`] are all
//! generated from it.
//!
//! ```text
//! "llm_request_completed"    <->  EventType::LlmRequestCompleted
//! "task.created"             <->  EventType::TaskCreated
//! "agent.identity.verified"  <->  EventType::AgentIdentityVerified
//! "my.own.type"              <->  EventType::Custom("my.own.type")
//! ```
//!
//! Rust names are the CamelCase of the wire strings: dots and underscores both
//! start a new word (`log.checkpoint.created` is `LogCheckpointCreated`).
//!
//! Uses nothing else in the crate.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// Generates [`EventType`] and its table-driven methods from one list of
/// `Variant => "wire"` lines.
///
/// Input shape:
///
/// ```text
/// <enum attributes>
/// pub enum Name {
///     "doc line shared by the group" { Variant => "wire", ... }   // one or more groups
///     gl "doc line shared by the GL group" { Variant => "wire", ... }
///     <attributes> Custom(String),
/// }
/// ```
///
/// Each variant gets the group's doc line, its own doc attributes if any, and
/// a line naming its wire string.
macro_rules! event_types {
    (
        $(#[$enum_attr:meta])*
        $vis:vis enum $name:ident {
            $(
                $group_doc:literal {
                    $( $(#[$attr:meta])* $variant:ident => $wire:literal, )+
                }
            )+
            gl $gl_doc:literal {
                $( $gl_variant:ident => $gl_wire:literal, )+
            }
            $(#[$custom_attr:meta])*
            $custom:ident(String),
        }
    ) => {
        $(#[$enum_attr])*
        $vis enum $name {
            $( $(
                #[doc = $group_doc]
                $(#[$attr])*
                #[doc = ""]
                #[doc = concat!("Wire string: `", $wire, "`.")]
                $variant,
            )+ )+
            $(
                #[doc = $gl_doc]
                #[doc = ""]
                #[doc = concat!("Wire string: `", $gl_wire, "`.")]
                $gl_variant,
            )+
            $(#[$custom_attr])*
            $custom(String),
        }

        impl $name {
            /// Every variant except the custom one, in declaration order.
            const KNOWN: &'static [$name] = &[
                $( $( $name::$variant, )+ )+
                $( $name::$gl_variant, )+
            ];

            /// The exact wire string of this event type.
            ///
            /// For a custom type this is the string it holds.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $( $( Self::$variant => $wire, )+ )+
                    $( Self::$gl_variant => $gl_wire, )+
                    Self::$custom(other) => other,
                }
            }

            /// The known (non-custom) variant whose wire string is `s`, if any.
            fn lookup(s: &str) -> Option<Self> {
                let found = match s {
                    $( $( $wire => Self::$variant, )+ )+
                    $( $gl_wire => Self::$gl_variant, )+
                    _ => return None,
                };
                Some(found)
            }

            /// Whether this is one of the event types of GL's LM invoker
            /// (`activity`, `code_start`, `code`, `code_end`, `thinking_start`,
            /// `thinking`, `thinking_end`, `response`, `status`, `reference`).
            #[must_use]
            pub fn is_gl(&self) -> bool {
                matches!(self, $( Self::$gl_variant )|+)
            }
        }
    };
}

event_types! {
    /// The type of an `OpenIntent` event.
    ///
    /// Every event type of the `OpenIntent` protocol has its own variant, named
    /// after its wire string, as do the event types of GL's LM invoker; the
    /// RFCs cited in the variant docs are the protocol's RFCs. Any other type
    /// string is kept, unchanged, in [`EventType::Custom`].
    ///
    /// Use [`EventType::parse`] (or [`FromStr`], `From<&str>`,
    /// `From<String>`, serde) to read a type string: it never fails, and it
    /// never wraps a known string in `Custom`, so two `EventType`s compare
    /// equal exactly when their wire strings are equal.
    ///
    /// Ordering ([`Ord`]) follows declaration order, with every `Custom` after
    /// all known variants (customs are ordered by their string). It is a
    /// stable order for keys and sets, not an alphabetical one.
    ///
    /// Serialized (serde) as the plain wire string.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
    #[non_exhaustive]
    pub enum EventType {
        "Intent lifecycle event (RFC-0001)." {
            IntentCreated => "intent_created",
            StatePatched => "state_patched",
            StatusChanged => "status_changed",
        }
        "Agent assignment event." {
            AgentAssigned => "agent_assigned",
            AgentUnassigned => "agent_unassigned",
        }
        "Constraint event." {
            ConstraintAdded => "constraint_added",
            ConstraintRemoved => "constraint_removed",
        }
        "Dependency event (RFC-0002, intent graphs)." {
            DependencyAdded => "dependency_added",
            DependencyRemoved => "dependency_removed",
        }
        "Lease event (RFC-0003)." {
            LeaseAcquired => "lease_acquired",
            LeaseReleased => "lease_released",
        }
        "Governance event: arbitration and decision records (RFC-0003)." {
            ArbitrationRequested => "arbitration_requested",
            DecisionRecorded => "decision_recorded",
        }
        "Attachment event (RFC-0005)." {
            AttachmentAdded => "attachment_added",
        }
        "Portfolio event." {
            PortfolioCreated => "portfolio_created",
            AddedToPortfolio => "added_to_portfolio",
            RemovedFromPortfolio => "removed_from_portfolio",
        }
        "Failure event (RFC-0010)." {
            FailureRecorded => "failure_recorded",
        }
        "General event." {
            Comment => "comment",
        }
        "LLM observability event: tool calls, LLM requests, streams (RFC-0008)." {
            ToolCallStarted => "tool_call_started",
            ToolCallCompleted => "tool_call_completed",
            ToolCallFailed => "tool_call_failed",
            LlmRequestStarted => "llm_request_started",
            LlmRequestCompleted => "llm_request_completed",
            LlmRequestFailed => "llm_request_failed",
            StreamStarted => "stream_started",
            StreamChunk => "stream_chunk",
            StreamCompleted => "stream_completed",
            StreamCancelled => "stream_cancelled",
        }
        "Access-control event (RFC-0011)." {
            AccessGranted => "access_granted",
            AccessRevoked => "access_revoked",
            AccessExpired => "access_expired",
            AccessRequested => "access_requested",
            AccessRequestApproved => "access_request_approved",
            AccessRequestDenied => "access_request_denied",
        }
        "Task event (RFC-0012)." {
            TaskCreated => "task.created",
            TaskReady => "task.ready",
            TaskClaimed => "task.claimed",
            TaskStarted => "task.started",
            TaskProgress => "task.progress",
            TaskCompleted => "task.completed",
            TaskFailed => "task.failed",
            TaskRetrying => "task.retrying",
            TaskBlocked => "task.blocked",
            TaskUnblocked => "task.unblocked",
            TaskDelegated => "task.delegated",
            TaskEscalated => "task.escalated",
            TaskCancelled => "task.cancelled",
            TaskSkipped => "task.skipped",
        }
        "Plan event (RFC-0012)." {
            PlanCreated => "plan.created",
            PlanActivated => "plan.activated",
            PlanPaused => "plan.paused",
            PlanResumed => "plan.resumed",
            PlanCompleted => "plan.completed",
            PlanFailed => "plan.failed",
            PlanCheckpointReached => "plan.checkpoint_reached",
            PlanCheckpointApproved => "plan.checkpoint_approved",
            PlanCheckpointRejected => "plan.checkpoint_rejected",
        }
        "Coordinator event (RFC-0013)." {
            CoordinatorDecision => "coordinator.decision",
            CoordinatorHeartbeat => "coordinator.heartbeat",
            CoordinatorPaused => "coordinator.paused",
            CoordinatorResumed => "coordinator.resumed",
            CoordinatorReplaced => "coordinator.replaced",
            CoordinatorUnresponsive => "coordinator.unresponsive",
            CoordinatorFailedOver => "coordinator.failed_over",
            CoordinatorHandoff => "coordinator.handoff",
            CoordinatorPlanOverridden => "coordinator.plan_overridden",
            CoordinatorGuardrailsUpdated => "coordinator.guardrails_updated",
            CoordinatorStalled => "coordinator.stalled",
            CoordinatorEscalationResolved => "coordinator.escalation_resolved",
        }
        "Governance-enforcement event (RFC-0013)." {
            GovernancePolicySet => "governance.policy_set",
            GovernancePolicyRemoved => "governance.policy_removed",
            GovernanceApprovalGranted => "governance.approval_granted",
            GovernanceApprovalDenied => "governance.approval_denied",
            GovernanceViolation => "governance.violation",
        }
        "Tool, grant or credential event (RFC-0014)." {
            ToolInvoked => "tool.invoked",
            ToolDenied => "tool.denied",
            GrantCreated => "grant.created",
            GrantDelegated => "grant.delegated",
            GrantRevoked => "grant.revoked",
            GrantExpired => "grant.expired",
            GrantSuspended => "grant.suspended",
            GrantResumed => "grant.resumed",
            CredentialCreated => "credential.created",
            CredentialRotated => "credential.rotated",
            CredentialExpired => "credential.expired",
            CredentialRevoked => "credential.revoked",
        }
        "Memory event (RFC-0015)." {
            MemoryCreated => "memory.created",
            MemoryUpdated => "memory.updated",
            MemoryDeleted => "memory.deleted",
            MemoryArchived => "memory.archived",
            MemoryEvicted => "memory.evicted",
            MemoryExpired => "memory.expired",
        }
        "Agent lifecycle event (RFC-0016)." {
            AgentLifecycle => "agent.lifecycle",
            AgentRegistered => "agent.registered",
            AgentStatusChanged => "agent.status_changed",
            AgentDead => "agent.dead",
        }
        "Trigger event (RFC-0017)." {
            TriggerFired => "trigger.fired",
            TriggerSkipped => "trigger.skipped",
            TriggerCascadeLimit => "trigger.cascade_limit",
            TriggerNamespaceBlocked => "trigger.namespace_blocked",
        }
        "Agent identity event (RFC-0018)." {
            AgentIdentityRegistered => "agent.identity.registered",
            AgentIdentityRotated => "agent.identity.rotated",
            AgentIdentityRevoked => "agent.identity.revoked",
            AgentIdentityChallengeIssued => "agent.identity.challenge_issued",
            AgentIdentityVerified => "agent.identity.verified",
        }
        "Verifiable-log event (RFC-0019)." {
            LogCheckpointCreated => "log.checkpoint.created",
            LogCheckpointAnchored => "log.checkpoint.anchored",
        }
        "Channel messaging event (RFC-0021)." {
            ChannelCreated => "channel.created",
            ChannelClosed => "channel.closed",
            ChannelMessage => "channel.message",
        }
        "Governance-enforcement event (RFC-0013)." {
            GovernanceApprovalEnforced => "governance.approval_enforced",
        }
        "Federation event (RFC-0022)." {
            FederationDispatched => "federation.dispatched",
            FederationReceived => "federation.received",
            FederationCallback => "federation.callback",
            FederationBudgetWarning => "federation.budget_warning",
            FederationCompleted => "federation.completed",
            FederationFailed => "federation.failed",
        }
        "Human-in-the-loop event (RFC-0025)." {
            IntentSuspended => "intent.suspended",
            IntentResumed => "intent.resumed",
            IntentSuspensionExpired => "intent.suspension_expired",
            EngagementDecision => "engagement.decision",
        }
        "Suspension follow-up event (RFC-0026)." {
            IntentSuspensionRenotified => "intent.suspension_renotified",
            IntentSuspensionEscalated => "intent.suspension_escalated",
            PortfolioMemberSuspended => "portfolio.member_suspended",
            PortfolioMemberResumed => "portfolio.member_resumed",
        }
        "Event type written on the wire but absent from the SDK's `EventType` enum." {
            /// The reference server writes it when a lease is renewed (RFC-0003).
            LeaseRenewed => "lease_renewed",
            /// The reference server writes it when an escalation is opened (RFC-0013).
            EscalationInitiated => "escalation_initiated",
            /// The reference server writes it when an escalation is resolved (RFC-0013).
            EscalationResolved => "escalation_resolved",
            /// The SDK's LLM engine writes it for each local tool invocation (RFC-0020 tracing).
            ToolInvocation => "tool_invocation",
            /// Named by RFC-0009: emitted when spending approaches a budget threshold.
            BudgetAlert => "budget_alert",
        }
        gl "Event type from GL's LM invoker (not part of the protocol)." {
            Activity => "activity",
            CodeStart => "code_start",
            Code => "code",
            CodeEnd => "code_end",
            ThinkingStart => "thinking_start",
            Thinking => "thinking",
            ThinkingEnd => "thinking_end",
            Response => "response",
            Status => "status",
            Reference => "reference",
        }
        /// Any other type string: kept as data.
        ///
        /// [`EventType::parse`] produces `Custom` only for strings that no
        /// other variant claims. A `Custom` built by hand around a known
        /// string (say `Custom("intent_created".into())`) is *not* equal to
        /// the known variant (`IntentCreated`), even though both have the same
        /// [`as_str`](EventType::as_str); pass such strings through
        /// [`EventType::parse`] instead.
        Custom(String),
    }
}

impl EventType {
    /// Reads a type string. Never fails.
    ///
    /// A known wire string (compared exactly, case-sensitively) gives its
    /// variant; anything else, including the empty string, gives
    /// [`EventType::Custom`] holding a copy of `s`.
    #[must_use]
    pub fn parse(s: &str) -> EventType {
        Self::lookup(s).unwrap_or_else(|| Self::Custom(s.to_owned()))
    }

    /// Every known (non-custom) variant, in declaration order: the protocol's
    /// types first, then the GL types.
    #[must_use]
    pub fn known() -> &'static [EventType] {
        Self::KNOWN
    }

    /// Whether this is [`EventType::Custom`], a type string oidb does not know.
    #[must_use]
    pub fn is_custom(&self) -> bool {
        matches!(self, Self::Custom(_))
    }
}

impl fmt::Display for EventType {
    /// Writes the wire string ([`EventType::as_str`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = Infallible;

    /// Same as [`EventType::parse`]; never fails.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

impl From<&str> for EventType {
    /// Same as [`EventType::parse`].
    fn from(s: &str) -> Self {
        Self::parse(s)
    }
}

impl From<String> for EventType {
    /// Same as [`EventType::parse`], reusing the string's buffer for a custom type.
    fn from(s: String) -> Self {
        Self::lookup(&s).unwrap_or(Self::Custom(s))
    }
}

impl serde::Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(EventTypeVisitor)
    }
}

/// Deserializes an [`EventType`] from any string, via [`EventType::parse`].
struct EventTypeVisitor;

impl serde::de::Visitor<'_> for EventTypeVisitor {
    type Value = EventType;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event type string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EventType, E> {
        Ok(EventType::parse(v))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<EventType, E> {
        Ok(EventType::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::EventType;
    use std::collections::HashSet;

    /// Number of distinct wire strings in the SDK's `EventType` enum
    /// (openintent 0.17.0; its two legacy aliases repeat existing strings).
    const SDK_CONSTANTS: usize = 126;
    /// Protocol wire strings outside the SDK enum that oidb also knows.
    const OPENINTENT_EXTRAS: usize = 5;
    /// GL LM-invoker types.
    const GL_TYPES: usize = 10;

    /// CamelCase of a wire string, dots and underscores starting new words.
    fn camel(wire: &str) -> String {
        wire.split(['.', '_'])
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect()
    }

    #[test]
    fn every_known_variant_round_trips() {
        for ty in EventType::known() {
            assert!(!ty.is_custom(), "{ty:?} is listed as known");
            assert_eq!(&EventType::parse(ty.as_str()), ty);
            assert_eq!(&EventType::from(ty.as_str().to_owned()), ty);
            assert_eq!(&ty.as_str().parse::<EventType>().unwrap(), ty);
            assert_eq!(ty.to_string(), ty.as_str());
        }
    }

    #[test]
    fn wire_strings_are_unique() {
        let known = EventType::known();
        let wires: HashSet<&str> = known.iter().map(EventType::as_str).collect();
        assert_eq!(wires.len(), known.len());
        let variants: HashSet<&EventType> = known.iter().collect();
        assert_eq!(variants.len(), known.len());
    }

    #[test]
    fn known_count_matches_sources() {
        assert_eq!(
            EventType::known().len(),
            SDK_CONSTANTS + OPENINTENT_EXTRAS + GL_TYPES
        );
        let gl = EventType::known().iter().filter(|t| t.is_gl()).count();
        assert_eq!(gl, GL_TYPES);
        // GL types come last, after every protocol type.
        let first_gl = EventType::known().iter().position(EventType::is_gl);
        assert_eq!(first_gl, Some(SDK_CONSTANTS + OPENINTENT_EXTRAS));
    }

    #[test]
    fn variant_names_are_camel_case_of_wire_strings() {
        for ty in EventType::known() {
            assert_eq!(format!("{ty:?}"), camel(ty.as_str()));
        }
    }

    #[test]
    fn known_is_in_ascending_order() {
        let known = EventType::known();
        assert!(known.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(known
            .iter()
            .all(|ty| *ty < EventType::Custom(String::new())));
    }

    #[test]
    fn spot_checks() {
        assert_eq!(
            EventType::LlmRequestCompleted.as_str(),
            "llm_request_completed"
        );
        assert_eq!(
            EventType::parse("llm_request_completed"),
            EventType::LlmRequestCompleted
        );
        assert_eq!(EventType::TaskCreated.as_str(), "task.created");
        assert_eq!(EventType::parse("task.created"), EventType::TaskCreated);
        assert_eq!(EventType::IntentCreated.as_str(), "intent_created");
        assert_eq!(
            EventType::parse("agent.identity.verified"),
            EventType::AgentIdentityVerified
        );
        assert_eq!(
            EventType::parse("log.checkpoint.created"),
            EventType::LogCheckpointCreated
        );
        assert_eq!(
            EventType::parse("governance.violation"),
            EventType::GovernanceViolation
        );
        assert_eq!(EventType::parse("budget_alert"), EventType::BudgetAlert);
        assert_eq!(EventType::parse("lease_renewed"), EventType::LeaseRenewed);
        assert!(!EventType::parse("lease_renewed").is_custom());
        assert_eq!(EventType::parse("thinking_end"), EventType::ThinkingEnd);
        assert!(EventType::Status.is_gl());
        assert!(EventType::Code.is_gl());
        assert!(!EventType::StatusChanged.is_gl());
        assert!(!EventType::Custom("status".into()).is_gl());
    }

    #[test]
    fn custom_round_trip() {
        for s in ["my.custom.type", "", "Intent_Created", "task.created "] {
            let ty = EventType::parse(s);
            assert_eq!(ty, EventType::Custom(s.to_owned()));
            assert!(ty.is_custom());
            assert!(!ty.is_gl());
            assert_eq!(ty.as_str(), s);
            assert_eq!(ty.to_string(), s);
            assert_eq!(EventType::parse(ty.as_str()), ty);
            assert_eq!(EventType::from(s.to_owned()), ty);
        }
    }

    #[test]
    fn hand_built_custom_with_known_string_is_not_equal() {
        let fake = EventType::Custom("intent_created".to_owned());
        assert_ne!(fake, EventType::IntentCreated);
        assert_eq!(EventType::parse(fake.as_str()), EventType::IntentCreated);
    }

    #[test]
    fn display_respects_width() {
        assert_eq!(format!("{:>10}", EventType::Code), "      code");
    }

    #[test]
    fn serde_round_trip() {
        let json = serde_json::to_string(&EventType::TaskCreated).unwrap();
        assert_eq!(json, "\"task.created\"");
        let back: EventType = serde_json::from_str(&json).unwrap();
        assert_eq!(back, EventType::TaskCreated);

        let custom = EventType::parse("x.y");
        let json = serde_json::to_string(&custom).unwrap();
        assert_eq!(json, "\"x.y\"");
        assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), custom);

        let all: Vec<EventType> = EventType::known().to_vec();
        let json = serde_json::to_string(&all).unwrap();
        assert_eq!(serde_json::from_str::<Vec<EventType>>(&json).unwrap(), all);

        let value = serde_json::json!("lease_renewed");
        assert_eq!(
            serde_json::from_value::<EventType>(value).unwrap(),
            EventType::LeaseRenewed
        );

        assert!(serde_json::from_str::<EventType>("42").is_err());
        assert!(serde_json::from_str::<EventType>("null").is_err());
    }
}
