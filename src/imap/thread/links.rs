//! The parent links THREAD=REFERENCES step 1 builds, with the question it must ask before every
//! link: would it close a loop? RFC 5256 refuses a link that makes a message its own ancestor,
//! at the moment the link is made, so which links survive depends on the order they come in;
//! answering by walking up to the root costs the depth of the thread per link, quadratic on a
//! long reply chain. This is a link-cut tree (Sleator and Tarjan, without re-rooting): finding
//! a node's root, linking a root under a node and cutting a node from its parent each cost
//! amortised O(log n). Every operation is a loop; nothing recurses.

/// No node.
const NIL: usize = usize::MAX;

/// A forest of parent links that knows each node's root cheaply.
#[derive(Debug, Default)]
pub struct Links {
    /// The parent of each node in the thread forest.
    parent: Vec<Option<usize>>,
    /// Splay-tree children of each node (left: nearer the root on its preferred path).
    left: Vec<usize>,
    right: Vec<usize>,
    /// Splay-tree parent, or for the root of a splay tree the path-parent: the node above the
    /// top of its preferred path.
    up: Vec<usize>,
}

impl Links {
    /// Adds a node with no parent and no children; returns its number.
    pub fn add(&mut self) -> usize {
        self.parent.push(None);
        self.left.push(NIL);
        self.right.push(NIL);
        self.up.push(NIL);
        self.parent.len() - 1
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// The parent of `node`, if linked.
    pub fn parent(&self, node: usize) -> Option<usize> {
        self.parent[node]
    }

    /// Makes `parent` the parent of `child`, which must have none, unless that would make
    /// `child` its own ancestor (`parent` is `child` or below it); `false` when refused.
    pub fn link(&mut self, child: usize, parent: usize) -> bool {
        debug_assert!(self.parent[child].is_none());
        if self.root(parent) == child {
            return false;
        }
        // `child` is the root of its tree, so after `access` it is alone on its path.
        self.access(child);
        self.up[child] = parent;
        self.parent[child] = Some(parent);
        true
    }

    /// Breaks the link between `node` and its parent, if any.
    pub fn cut(&mut self, node: usize) {
        if self.parent[node].take().is_none() {
            return;
        }
        // After `access`, the left subtree holds exactly the ancestors of `node`.
        self.access(node);
        let above = std::mem::replace(&mut self.left[node], NIL);
        if above != NIL {
            self.up[above] = NIL;
        }
    }

    /// The root of the tree `node` is in.
    pub fn root(&mut self, node: usize) -> usize {
        self.access(node);
        let mut top = node;
        while self.left[top] != NIL {
            top = self.left[top];
        }
        self.splay(top);
        top
    }

    /// Makes the path from the root to `node` one preferred path, with `node` at the root of
    /// its splay tree and nothing below it on the path.
    fn access(&mut self, node: usize) {
        let mut below = NIL;
        let mut at = node;
        while at != NIL {
            self.splay(at);
            self.right[at] = below;
            below = at;
            at = self.up[at];
        }
        self.splay(node);
    }

    /// Whether `x` is the root of its splay tree (its `up`, if any, is a path-parent).
    fn is_splay_root(&self, x: usize) -> bool {
        let p = self.up[x];
        p == NIL || (self.left[p] != x && self.right[p] != x)
    }

    /// Rotates `x` above its splay parent.
    fn rotate(&mut self, x: usize) {
        let p = self.up[x];
        let g = self.up[p];
        let p_was_root = self.is_splay_root(p);
        if self.left[p] == x {
            let moved = self.right[x];
            self.left[p] = moved;
            if moved != NIL {
                self.up[moved] = p;
            }
            self.right[x] = p;
        } else {
            let moved = self.left[x];
            self.right[p] = moved;
            if moved != NIL {
                self.up[moved] = p;
            }
            self.left[x] = p;
        }
        self.up[p] = x;
        self.up[x] = g;
        if !p_was_root {
            if self.left[g] == p {
                self.left[g] = x;
            } else {
                self.right[g] = x;
            }
        }
    }

    /// Brings `x` to the root of its splay tree.
    fn splay(&mut self, x: usize) {
        while !self.is_splay_root(x) {
            let p = self.up[x];
            if !self.is_splay_root(p) {
                let g = self.up[p];
                let same_side = (self.left[g] == p) == (self.left[p] == x);
                self.rotate(if same_side { p } else { x });
            }
            self.rotate(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root by walking parent links: what `Links::root` must agree with.
    fn walked_root(links: &Links, mut node: usize) -> usize {
        while let Some(p) = links.parent(node) {
            node = p;
        }
        node
    }

    #[test]
    fn refuses_exactly_the_links_that_close_a_loop() {
        let mut links = Links::default();
        let n: Vec<usize> = (0..4).map(|_| links.add()).collect();
        assert!(links.link(n[1], n[0]));
        assert!(links.link(n[2], n[1]));
        assert!(!links.link(n[0], n[2]), "0 is above 2");
        assert!(!links.link(n[0], n[0]), "no node is its own parent");
        assert!(links.link(n[0], n[3]));
        assert_eq!(links.root(n[2]), n[3]);
        links.cut(n[1]);
        assert_eq!(links.root(n[2]), n[1]);
        assert_eq!(links.root(n[0]), n[3]);
        assert!(
            links.link(n[1], n[0]),
            "after the cut, 1 may hang under 0 again"
        );
        assert_eq!(links.parent(n[1]), Some(n[0]));
    }

    #[test]
    fn agrees_with_walking_up_under_random_links_and_cuts() {
        // A small deterministic generator: no dependency for a test.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let mut links = Links::default();
        for _ in 0..300 {
            links.add();
        }
        for _ in 0..20_000 {
            let (a, b) = (next(300), next(300));
            match next(3) {
                0 => links.cut(a),
                _ if links.parent(a).is_none() => {
                    let loops = walked_root(&links, b) == a;
                    assert_eq!(links.link(a, b), !loops);
                }
                _ => {}
            }
            let c = next(300);
            assert_eq!(links.root(c), walked_root(&links, c));
        }
    }

    #[test]
    fn a_long_chain_costs_no_stack() {
        let joined = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| {
                let mut links = Links::default();
                let first = links.add();
                let mut last = first;
                for _ in 0..200_000 {
                    let n = links.add();
                    assert!(links.link(n, last));
                    last = n;
                }
                assert_eq!(links.root(last), first);
                assert!(!links.link(first, last));
                links.cut(100_000);
                assert_eq!(links.root(last), 100_000);
            })
            .expect("thread starts")
            .join();
        assert!(joined.is_ok());
    }
}
