//! Frame decoding: a getData, a create and a 10-op multi request, as the server's connection
//! loop decodes them (`decode_frame` on the body after the length prefix).
//!
//! `cargo bench -p warren-proto --bench decode`; `-- --test` runs each once (CI smoke test).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warren_proto::records::{CreateRequest, GetDataRequest, SetDataRequest};
use warren_proto::request::{MultiOp, Request, encode_request};
use warren_proto::{Acl, CreateMode, Xid, decode_frame};

/// A request's frame body, without the 4-byte length prefix the connection strips.
fn body(req: &Request) -> Vec<u8> {
    encode_request(Xid(42), req)[4..].to_vec()
}

fn create(path: &str) -> CreateRequest {
    CreateRequest {
        path: path.to_owned(),
        data: Some(vec![7; 100]),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Persistent.code(),
    }
}

fn decode(c: &mut Criterion) {
    let get = body(&Request::GetData(GetDataRequest {
        path: "/warren-bench/get-1/keys/k000123".to_owned(),
        watch: false,
    }));
    let create = body(&Request::Create(create(
        "/warren-bench/create-1/s3/00012345",
    )));
    let multi = body(&Request::Multi(
        (0..10)
            .map(|i| {
                MultiOp::SetData(SetDataRequest {
                    path: format!("/warren-bench/multi-1/keys/k{i:06}"),
                    data: Some(vec![7; 100]),
                    version: -1,
                })
            })
            .collect(),
    ));
    let mut g = c.benchmark_group("decode_frame");
    for (name, frame) in [("getData", &get), ("create", &create), ("multi10", &multi)] {
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| decode_frame(black_box(frame)).expect("a valid frame"))
        });
    }
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
