//! State-machine property test of the drain / enable / disable policy
//! against a simple reference model.

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::policy::{
    AdminAction, AdminPolicy, DrainStatus, Occupancy, PolicyEvent, TransitionError, transition,
};

/// The model's view of a worker's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Active,
    Draining(Option<u64>),
    Drained,
    Disabled { forced: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    SessionsRemain(u32),
    Illegal,
}

#[derive(Debug, Clone)]
struct Model {
    mode: Mode,
    reported: u32,
    dispatched: u32,
    now: u64,
    /// What the last admin step must have answered.
    refused: Option<Refusal>,
}

impl Model {
    fn sessions(&self) -> u32 {
        self.reported.max(self.dispatched)
    }
    fn empty(&self) -> bool {
        self.reported == 0 && self.dispatched == 0
    }
}

#[derive(Debug, Clone)]
enum Step {
    Drain { deadline_in: Option<u64> },
    Activate,
    Disable { force: bool },
    Enable,
    Observe,
    Occupy { reported: u32, dispatched: u32 },
    Advance(u64),
}

struct PolicyModel;

impl ReferenceStateMachine for PolicyModel {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model {
            mode: Mode::Active,
            reported: 0,
            dispatched: 0,
            now: 1_000,
            refused: None,
        })
        .boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Step> {
        prop_oneof![
            proptest::option::of(0u64..5_000).prop_map(|deadline_in| Step::Drain { deadline_in }),
            Just(Step::Activate),
            any::<bool>().prop_map(|force| Step::Disable { force }),
            Just(Step::Enable),
            Just(Step::Observe),
            Just(Step::Observe),
            (0u32..3, 0u32..3).prop_map(|(reported, dispatched)| Step::Occupy {
                reported,
                dispatched
            }),
            (0u64..3_000).prop_map(Step::Advance),
        ]
        .boxed()
    }

    fn apply(mut s: Model, step: &Step) -> Model {
        s.refused = None;
        match *step {
            Step::Drain { deadline_in } => match s.mode {
                Mode::Disabled { .. } => s.refused = Some(Refusal::Illegal),
                Mode::Active if s.empty() => s.mode = Mode::Drained,
                Mode::Active | Mode::Draining(_) => {
                    s.mode = Mode::Draining(deadline_in.map(|d| s.now + d))
                }
                Mode::Drained => {}
            },
            Step::Activate => s.mode = Mode::Active,
            Step::Enable => {
                if let Mode::Disabled { .. } = s.mode {
                    s.mode = Mode::Active;
                }
            }
            Step::Disable { force } => match s.mode {
                Mode::Disabled { .. } => {}
                _ if s.sessions() == 0 => s.mode = Mode::Disabled { forced: false },
                _ if force => s.mode = Mode::Disabled { forced: true },
                _ => s.refused = Some(Refusal::SessionsRemain(s.sessions())),
            },
            Step::Observe => {
                if let Mode::Draining(deadline) = s.mode {
                    if s.empty() {
                        s.mode = Mode::Drained;
                    } else if deadline.is_some_and(|d| s.now >= d) {
                        s.mode = Mode::Disabled { forced: true };
                    }
                }
            }
            Step::Occupy {
                reported,
                dispatched,
            } => {
                s.reported = reported;
                s.dispatched = dispatched;
            }
            Step::Advance(ms) => s.now += ms,
        }
        s
    }
}

#[derive(Debug)]
struct Worker {
    policy: AdminPolicy,
    occupancy: Occupancy,
    now: Timestamp,
}

struct PolicyTest;

impl StateMachineTest for PolicyTest {
    type SystemUnderTest = Worker;
    type Reference = PolicyModel;

    fn init_test(_: &Model) -> Worker {
        Worker {
            policy: AdminPolicy::default(),
            occupancy: Occupancy::default(),
            now: Timestamp(1_000),
        }
    }

    fn apply(mut w: Worker, model: &Model, step: Step) -> Worker {
        let event = match step {
            Step::Drain { deadline_in } => PolicyEvent::Admin(AdminAction::Drain {
                deadline: deadline_in.map(|d| Timestamp(w.now.0 + d)),
            }),
            Step::Activate => PolicyEvent::Admin(AdminAction::Activate),
            Step::Disable { force } => PolicyEvent::Admin(AdminAction::Disable { force }),
            Step::Enable => PolicyEvent::Admin(AdminAction::Enable),
            Step::Observe => PolicyEvent::Observed,
            Step::Occupy {
                reported,
                dispatched,
            } => {
                w.occupancy = Occupancy {
                    reported_active: reported,
                    dispatched,
                };
                return w;
            }
            Step::Advance(ms) => {
                w.now = Timestamp(w.now.0 + ms);
                return w;
            }
        };
        match transition(w.policy, event, w.occupancy, w.now) {
            Ok(t) => {
                assert_eq!(
                    model.refused, None,
                    "the model refuses {step:?}, the code accepted it"
                );
                assert_eq!(t.from, w.policy);
                w.policy = t.to;
            }
            Err(TransitionError::SessionsRemain { count }) => {
                assert_eq!(model.refused, Some(Refusal::SessionsRemain(count)));
            }
            Err(TransitionError::Illegal { .. }) => {
                assert_eq!(model.refused, Some(Refusal::Illegal))
            }
            Err(e) => panic!("unexpected error {e}"),
        }
        w
    }

    fn check_invariants(w: &Worker, model: &Model) {
        let expected = match model.mode {
            Mode::Active => AdminPolicy::Active,
            Mode::Draining(d) => AdminPolicy::Draining {
                deadline: d.map(Timestamp),
            },
            Mode::Drained => AdminPolicy::Drained,
            Mode::Disabled { forced } => AdminPolicy::Disabled { forced },
        };
        assert_eq!(w.policy, expected);
        // The API flags agree with the one policy value.
        assert_eq!(w.policy.accepts_new_sessions(), model.mode == Mode::Active);
        assert_eq!(
            w.policy.is_enabled(),
            !matches!(model.mode, Mode::Disabled { .. })
        );
        let status = match model.mode {
            Mode::Draining(_) => DrainStatus::Draining,
            Mode::Drained => DrainStatus::Drained,
            _ => DrainStatus::None,
        };
        assert_eq!(w.policy.drain_status(), status);
        assert_eq!(w.policy.is_draining(), status != DrainStatus::None);
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn drain_policy_follows_the_model(sequential 1..40 => PolicyTest);
}
