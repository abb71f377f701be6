//! RFC-0019 Merkle trees over event hashes: roots, inclusion proofs and their verification.
//!
//! The leaves are the raw SHA-256 digests behind the events' `sha256:` hashes, in order. When
//! their number is not a power of two, the last leaf is repeated until it is; each parent is
//! SHA-256 of its left child's 32 bytes followed by its right child's. Roots and proof hashes are
//! written as event hashes are: `sha256:` + base64url without padding. This is what OpenIntent's
//! SDK checks in `MerkleProof.verify()`.
//!
//! ```
//! use oidb::chain::parse_hash;
//! use oidb::merkle::{inclusion_path, merkle_root, verify_path};
//!
//! let leaves: Vec<[u8; 32]> = (0u8..5).map(|i| [i; 32]).collect();
//! let root = merkle_root(&leaves).unwrap();
//! let path = inclusion_path(&leaves, 3).unwrap();
//! assert_eq!(path.len(), 3); // 5 leaves are padded to 8: three levels
//! assert!(verify_path(&leaves[3], &path, &root));
//! assert!(!verify_path(&leaves[2], &path, &root));
//! ```
//!
//! Uses `proof::chain`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::proof::chain::{format_hash, parse_hash, Digest32};

/// Which side of the running hash a sibling sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The sibling is the left child: `parent = SHA-256(sibling ‖ current)`.
    Left,
    /// The sibling is the right child: `parent = SHA-256(current ‖ sibling)`.
    Right,
}

/// One step of an inclusion proof, as OpenIntent writes it: `{"hash": "sha256:…", "position": "left"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofStep {
    /// The sibling's hash.
    pub hash: String,
    /// Which side the sibling is on.
    pub position: Side,
}

/// A proof that an event is included in a checkpoint's Merkle tree, in OpenIntent's
/// `MerkleProof` JSON shape.
///
/// Made by [`Store::inclusion_proof`](crate::Store::inclusion_proof); [`MerkleProof::verify`]
/// checks it without the store, exactly as the OpenIntent SDK does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MerkleProof {
    /// The event the proof is about.
    pub event_id: String,
    /// Its hash: the leaf.
    pub event_hash: String,
    /// The checkpoint whose tree includes it.
    pub checkpoint_id: String,
    /// The checkpoint's Merkle root.
    pub merkle_root: String,
    /// The siblings from the leaf up to the root.
    pub proof_hashes: Vec<ProofStep>,
    /// The leaf's index in the checkpoint's batch, from 0.
    pub leaf_index: u64,
}

impl MerkleProof {
    /// Whether the proof holds: hashing the event hash up through `proof_hashes` gives
    /// `merkle_root`. A hash that cannot be read makes the proof fail.
    #[must_use]
    pub fn verify(&self) -> bool {
        let (Some(leaf), Some(root)) =
            (parse_hash(&self.event_hash), parse_hash(&self.merkle_root))
        else {
            return false;
        };
        let mut path = Vec::with_capacity(self.proof_hashes.len());
        for step in &self.proof_hashes {
            let Some(sibling) = parse_hash(&step.hash) else {
                return false;
            };
            path.push((sibling, step.position));
        }
        verify_path(&leaf, &path, &root)
    }
}

/// A parent node: SHA-256 of the left child's bytes followed by the right child's.
#[must_use]
pub fn parent(left: &Digest32, right: &Digest32) -> Digest32 {
    let mut hasher = Sha256::new();
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The leaves padded to a power of two by repeating the last one; empty for no leaves.
fn padded(leaves: &[Digest32]) -> Vec<Digest32> {
    let Some(last) = leaves.last() else {
        return Vec::new();
    };
    let width = leaves.len().next_power_of_two();
    let mut level = Vec::with_capacity(width);
    level.extend_from_slice(leaves);
    level.resize(width, *last);
    level
}

/// Replaces a level (of even length) by the level above it.
fn climb(level: &mut Vec<Digest32>) {
    let mut parents = Vec::with_capacity(level.len() / 2);
    let mut nodes = level.iter();
    while let (Some(left), Some(right)) = (nodes.next(), nodes.next()) {
        parents.push(parent(left, right));
    }
    *level = parents;
}

/// The Merkle root over `leaves`; `None` when there are none (RFC-0019 never checkpoints an
/// empty batch). One leaf is its own root.
#[must_use]
pub fn merkle_root(leaves: &[Digest32]) -> Option<Digest32> {
    let mut level = padded(leaves);
    while level.len() > 1 {
        climb(&mut level);
    }
    level.first().copied()
}

/// The siblings that lead from leaf `index` up to the root, lowest first; `None` when `index`
/// is not a leaf.
#[must_use]
pub fn inclusion_path(leaves: &[Digest32], index: usize) -> Option<Vec<(Digest32, Side)>> {
    if index >= leaves.len() {
        return None;
    }
    let mut level = padded(leaves);
    let mut at = index;
    let mut path = Vec::new();
    while level.len() > 1 {
        let (sibling_at, side) = if at.is_multiple_of(2) {
            (at + 1, Side::Right)
        } else {
            (at - 1, Side::Left)
        };
        path.push((*level.get(sibling_at)?, side));
        climb(&mut level);
        at /= 2;
    }
    Some(path)
}

/// Whether hashing `leaf` up through `path` gives `root`.
#[must_use]
pub fn verify_path(leaf: &Digest32, path: &[(Digest32, Side)], root: &Digest32) -> bool {
    let top = path
        .iter()
        .fold(*leaf, |current, (sibling, side)| match side {
            Side::Left => parent(sibling, &current),
            Side::Right => parent(&current, sibling),
        });
    &top == root
}

/// The proof steps of a path, written as OpenIntent writes them.
pub(crate) fn proof_steps(path: &[(Digest32, Side)]) -> Vec<ProofStep> {
    path.iter()
        .map(|(hash, side)| ProofStep {
            hash: format_hash(hash),
            position: *side,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8) -> Digest32 {
        Sha256::digest([i]).into()
    }

    #[test]
    fn padding_repeats_the_last_leaf_not_the_last_node() {
        // Six leaves pad to a b c d e f f f; a per-level duplication would give ef|ef instead.
        let l: Vec<Digest32> = (0..6).map(leaf).collect();
        let ef = parent(&l[4], &l[5]);
        let ff = parent(&l[5], &l[5]);
        let expected = parent(
            &parent(&parent(&l[0], &l[1]), &parent(&l[2], &l[3])),
            &parent(&ef, &ff),
        );
        assert_eq!(merkle_root(&l), Some(expected));
        assert_ne!(
            merkle_root(&l),
            Some(parent(
                &parent(&parent(&l[0], &l[1]), &parent(&l[2], &l[3])),
                &parent(&ef, &ef)
            ))
        );
    }

    #[test]
    fn every_leaf_of_every_small_tree_proves() {
        for n in 1..=17u8 {
            let leaves: Vec<Digest32> = (0..n).map(leaf).collect();
            let root = merkle_root(&leaves).unwrap();
            for (i, l) in leaves.iter().enumerate() {
                let path = inclusion_path(&leaves, i).unwrap();
                assert_eq!(
                    path.len(),
                    leaves.len().next_power_of_two().trailing_zeros() as usize
                );
                assert!(verify_path(l, &path, &root), "n={n} i={i}");
                let other = leaf(200);
                assert!(!verify_path(&other, &path, &root), "n={n} i={i}");
            }
            assert!(inclusion_path(&leaves, leaves.len()).is_none());
        }
        assert!(merkle_root(&[]).is_none());
    }

    #[test]
    fn proof_verify_refuses_unreadable_hashes() {
        let leaves: Vec<Digest32> = (0..3).map(leaf).collect();
        let root = merkle_root(&leaves).unwrap();
        let mut proof = MerkleProof {
            event_id: "e".into(),
            event_hash: format_hash(&leaves[1]),
            checkpoint_id: "c".into(),
            merkle_root: format_hash(&root),
            proof_hashes: proof_steps(&inclusion_path(&leaves, 1).unwrap()),
            leaf_index: 1,
        };
        assert!(proof.verify());
        proof.proof_hashes[0].hash = "sha256:not-a-hash".into();
        assert!(!proof.verify());
    }
}
