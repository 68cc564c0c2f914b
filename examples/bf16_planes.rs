//! Measures whether splitting bf16 weights into byte planes before zstd pays: the
//! saving over zstd of the bytes as they are, and the decode speed on one core.
//!
//! `cargo run --release --example bf16_planes -- FILE` reads FILE (a `.safetensors` of
//! bf16 tensors, say) in 16 MiB blocks, as mreg stores parts, and prints one JSON
//! line. `bench/run.py --only dedup` runs it on its checkpoint.

use std::io::Read;
use std::time::Instant;

const BLOCK: usize = 16 << 20;
const LEVEL: i32 = 1;

fn main() {
    let path = std::env::args().nth(1).expect("usage: bf16_planes FILE");
    let mut file = std::fs::File::open(&path).expect("opening the file");
    let (mut raw, mut plain, mut planes) = (0usize, 0usize, 0usize);
    let (mut plain_decode, mut planes_decode) = (0f64, 0f64);
    let mut block = vec![0u8; BLOCK];
    loop {
        let n = read_block(&mut file, &mut block);
        if n < 2 {
            break;
        }
        let data = &block[..n - n % 2];
        raw += data.len();

        let packed = zstd::bulk::compress(data, LEVEL).expect("compressing");
        plain += packed.len();
        let start = Instant::now();
        let back = zstd::bulk::decompress(&packed, data.len()).expect("decoding");
        plain_decode += start.elapsed().as_secs_f64();
        assert_eq!(back, data);

        let low: Vec<u8> = data.iter().step_by(2).copied().collect();
        let high: Vec<u8> = data.iter().skip(1).step_by(2).copied().collect();
        let low_packed = zstd::bulk::compress(&low, LEVEL).expect("compressing");
        let high_packed = zstd::bulk::compress(&high, LEVEL).expect("compressing");
        planes += low_packed.len() + high_packed.len();
        let start = Instant::now();
        let low = zstd::bulk::decompress(&low_packed, data.len() / 2).expect("decoding");
        let high = zstd::bulk::decompress(&high_packed, data.len() / 2).expect("decoding");
        let mut joined = vec![0u8; data.len()];
        for (i, pair) in joined.chunks_exact_mut(2).enumerate() {
            pair[0] = low[i];
            pair[1] = high[i];
        }
        planes_decode += start.elapsed().as_secs_f64();
        assert_eq!(joined, data);
    }
    let gbps = |seconds: f64| raw as f64 / seconds.max(1e-9) / 1e9;
    println!(
        "{{\"bytes\": {raw}, \"plain\": {plain}, \"planes\": {planes}, \"saving_over_plain\": {:.4}, \"plain_decode_gbps\": {:.2}, \"planes_decode_gbps\": {:.2}}}",
        1.0 - planes as f64 / plain.max(1) as f64,
        gbps(plain_decode),
        gbps(planes_decode)
    );
}

fn read_block(file: &mut std::fs::File, block: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < block.len() {
        match file.read(&mut block[filled..]).expect("reading the file") {
            0 => break,
            n => filled += n,
        }
    }
    filled
}
