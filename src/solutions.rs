//! The challenge binaries' nodes, compiled into the library as well, so the
//! simulator and the tests run exactly the code of `src/bin/<challenge>.rs`
//! (the file a user reads and copies) in-process.

use crate::runner::TestOptions;
use crate::runner::options::WorkloadName;
use crate::sim::Simulation;

#[allow(dead_code)]
#[path = "bin/broadcast.rs"]
pub mod broadcast;

#[allow(dead_code)]
#[path = "bin/echo.rs"]
pub mod echo;

#[allow(dead_code)]
#[path = "bin/g-counter.rs"]
pub mod g_counter;

#[allow(dead_code)]
#[path = "bin/unique-ids.rs"]
pub mod unique_ids;

#[allow(dead_code)]
#[path = "bin/kafka.rs"]
pub mod kafka;

#[allow(dead_code)]
#[path = "bin/txn.rs"]
pub mod txn;

#[allow(dead_code)]
#[path = "bin/lin-kv.rs"]
pub mod lin_kv;

/// The names of the built-in solutions, for `glomers sim --solution`.
pub const NAMES: [&str; 7] = [
    "echo",
    "unique-ids",
    "broadcast",
    "g-counter",
    "kafka",
    "txn",
    "lin-kv",
];

/// The solution that solves a workload, if there is one.
pub fn for_workload(workload: WorkloadName) -> Option<&'static str> {
    match workload {
        WorkloadName::Echo => Some("echo"),
        WorkloadName::UniqueIds => Some("unique-ids"),
        WorkloadName::Broadcast => Some("broadcast"),
        WorkloadName::GCounter => Some("g-counter"),
        WorkloadName::Kafka => Some("kafka"),
        WorkloadName::TxnRwRegister => Some("txn"),
        WorkloadName::LinKv => Some("lin-kv"),
        _ => None,
    }
}

/// A simulation of `opts` running the named solution on every node.
pub fn simulation(solution: &str, opts: TestOptions) -> Option<Simulation> {
    Some(match solution {
        "echo" => Simulation::new(opts, || echo::EchoNode),
        "unique-ids" => Simulation::new(opts, unique_ids::UniqueIdsNode::default),
        "broadcast" => {
            let config =
                broadcast::Config::from_lookup(|name| opts.node_env(name).map(String::from));
            Simulation::new(opts, move || broadcast::BroadcastNode::new(config.clone()))
        }
        "g-counter" => {
            let config =
                g_counter::Config::from_lookup(|name| opts.node_env(name).map(String::from));
            Simulation::new(opts, move || g_counter::CounterNode::new(config.clone()))
        }
        "kafka" => Simulation::new(opts, kafka::KafkaNode::default),
        "txn" => Simulation::new(opts, txn::TxnNode::default),
        // Simulated kills lose the process, never the page cache.
        "lin-kv" => Simulation::new(opts, lin_kv::LinKvNode::for_process_crashes),
        _ => return None,
    })
}
