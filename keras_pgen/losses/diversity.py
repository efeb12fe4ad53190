"""Perceptual generation losses (seed 000): a diversity loss and a top-k matching loss on feature maps.

Both take lists of feature maps (one [N, H, W, C] tensor per layer, e.g. from
`perceptual.VGGFeatureExtractor`) and reuse `perceptual.feature_distance` for the per-pair
distance ("l1": mean absolute difference, "l2": mean squared, "gram": mean squared
difference of Gram matrices), weighted over layers by `layer_weights`.

- `perceptual_diversity_loss`: within the generated batch and within a real batch of the
  same size, the matrices of pairwise feature distances; the loss is the mean absolute
  difference of the two matrices. It is 0 when the generated batch has the real batch's
  spread and grows as the generated images collapse towards one (their matrix goes to 0).
  With distance "gram" the images are compared by style (non-localised), the seed's
  texture-like variant.
- `top_k_matching_assignment` / `perceptual_matching_loss`: with a real batch larger than the
  generated one (twice, in the seed), each generated image in turn takes as partner the
  nearest of its k nearest real images that no earlier generated image took (none if all k
  are taken); the real images still free are then handed at random to the generated images
  without one. The loss is the mean feature distance of the pairs. The assignment is discrete
  and computed without gradient; the loss on the chosen pairs is differentiable.

All pure Keras 3 (keras.ops); the randomness of the fill comes in as uniform draws.
"""
from keras import ops

from keras_pgen.losses.perceptual import feature_distance


def pairwise_feature_distances(features_a, features_b, layer_weights=None, distance="l1"):
    """The [N, M] matrix of `feature_distance(a_i, b_j)` for two lists of feature maps ([N, ...] and [M, ...]).

    Args:
        features_a, features_b: lists of [N, H, W, C] and [M, H, W, C] tensors (same layers).
        layer_weights: optional sequence of floats, one per layer (default 1).
        distance: "l1", "l2" or "gram" (see `perceptual.feature_distance`).
    """
    n, m = ops.shape(features_a[0])[0], ops.shape(features_b[0])[0]

    def pairs(f, axis):
        # [N, 1, ...] or [1, M, ...] broadcast to [N, M, ...], flattened to N * M samples (row-major: i * M + j)
        rest = tuple(ops.shape(f)[1:])
        full = ops.broadcast_to(ops.expand_dims(f, axis), (n, m) + rest)
        return ops.reshape(full, (-1,) + rest)

    rows = [pairs(f, 1) for f in features_a]
    cols = [pairs(f, 0) for f in features_b]
    return ops.reshape(feature_distance(rows, cols, layer_weights, distance), (n, m))


def perceptual_diversity_loss(fake_features, real_features, layer_weights=None, distance="l1"):
    """Mean |D_fake - D_real| of the within-batch pairwise feature-distance matrices (same batch size).

    Args:
        fake_features, real_features: lists of [N, H, W, C] feature maps of N generated and
            N real images.
        layer_weights: optional per-layer weights.
        distance: "l1" (localised features), "l2", or "gram" (style).

    Returns:
        scalar float32.

    Reference: seed 000 ("Perceptual Generation"): "a pairwise comparison between two
    generated batches, do the same for real data and take the distance between the pairwise
    differences".
    """
    if fake_features[0].shape[0] is not None and real_features[0].shape[0] is not None \
            and fake_features[0].shape[0] != real_features[0].shape[0]:
        raise ValueError(f"diversity loss needs batches of one size, got {fake_features[0].shape[0]} generated "
                         f"and {real_features[0].shape[0]} real")
    fake = pairwise_feature_distances(fake_features, fake_features, layer_weights, distance)
    real = pairwise_feature_distances(real_features, real_features, layer_weights, distance)
    return ops.mean(ops.abs(fake - real))


def top_k_matching_assignment(distances, uniforms, k=5):
    """Greedy top-k matching of generated images (rows) to real images (columns).

    For each row i in order: among the k columns with the smallest distance (ascending,
    ties to the lower index), the first one not taken by an earlier row becomes row i's
    partner; if all k are taken, row i has none yet. Then the untaken columns, in ascending
    order of `uniforms` (a random permutation when the uniforms are i.i.d.), go to the rows
    without partner, in row order.

    Args:
        distances: [G, R] float, R >= G. Treated as constant (stop_gradient).
        uniforms: [R] float, one draw per real image (from the input pipeline).
        k: int, default 5. Clamped to R.

    Returns:
        (partners, matched): int32 [G] column of each row's partner, and bool [G] true
        where the partner came from the top-k step.

    Example:
    >>> partners, matched = top_k_matching_assignment([[0., 1., 2.], [0., 5., 1.]], [0.3, 0.2, 0.1], k=1)
    >>> # row 0 takes column 0; row 1's only candidate (0) is taken -> random fill: column 2 (u=0.1)
    """
    distances = ops.stop_gradient(ops.cast(ops.convert_to_tensor(distances), "float32"))
    uniforms = ops.stop_gradient(ops.cast(ops.convert_to_tensor(uniforms), "float32"))
    g, r = ops.shape(distances)[0], ops.shape(distances)[1]
    k = int(k) if distances.shape[1] is None else min(int(k), int(distances.shape[1]))
    rows = ops.arange(g, dtype="int32")
    positions = ops.arange(k, dtype="int32")

    def body(i, state):
        used, partners = state
        _, nearest = ops.top_k(-ops.take(distances, i, axis=0), k, sorted=True)  # ascending distance
        nearest = ops.cast(nearest, "int32")
        free = ops.take(used, nearest) < 0.5
        first = ops.min(ops.where(free, positions, k))  # first free candidate, k if none
        found = first < k
        partner = ops.where(found, ops.take(nearest, ops.minimum(first, k - 1)), -1)
        used = used + ops.where(found, ops.one_hot(partner, r), 0.0)  # one_hot(-1) is all zeros anyway
        partners = ops.where(rows == i, partner, partners)
        return used, partners

    used, partners = ops.fori_loop(0, g, body, (ops.zeros((r,), "float32"), -ops.ones((g,), "int32")))
    matched = partners >= 0
    # random fill: free columns by ascending uniform (taken ones sorted last), handed out in row order
    order = ops.cast(ops.argsort(ops.where(used > 0.5, 2.0, uniforms)), "int32")
    rank = ops.cumsum(ops.cast(ops.logical_not(matched), "int32")) - 1
    fill = ops.take(order, ops.maximum(rank, 0))
    return ops.where(matched, partners, fill), matched


def perceptual_matching_loss(fake_features, real_features, uniforms, k=5, layer_weights=None, distance="l1"):
    """Mean feature distance of each generated image to its top-k matching partner among the real images.

    Args:
        fake_features: list of [G, H, W, C] feature maps of the generated images.
        real_features: list of [R, H, W, C] feature maps of the real images, R >= G (2G in the seed).
        uniforms: [R] uniform draws for the random fill (see `top_k_matching_assignment`).
        k: int, default 5.
        layer_weights: optional per-layer weights.
        distance: "l1" (default: the seed's mean absolute difference), "l2" or "gram".

    Returns:
        (loss, partners, matched): scalar float32, int32 [G], bool [G].

    Reference: seed 000 ("Perceptual Generation"); top-k idea from Sinha et al., Top-k
    Training of GANs, https://arxiv.org/abs/2002.06224.
    """
    fake_const = [ops.stop_gradient(f) for f in fake_features]
    real_const = [ops.stop_gradient(f) for f in real_features]
    distances = pairwise_feature_distances(fake_const, real_const, layer_weights, distance)
    partners, matched = top_k_matching_assignment(distances, uniforms, k)
    partner_features = [ops.take(f, partners, axis=0) for f in real_features]
    loss = ops.mean(feature_distance(fake_features, partner_features, layer_weights, distance))
    return loss, partners, matched
