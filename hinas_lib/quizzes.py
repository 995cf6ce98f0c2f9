"""The course's quiz questions, one list per notebook (shown and checked by :mod:`hinas_lib.quiz`).

Kept out of the notebooks so that no answer is printed before it is asked. Each answer is
checked against the library or the authors' code where it can be (``tests/test_quiz.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple


@dataclass(frozen=True)
class Question:
    """One question: ``choices`` in order, ``answer`` the index of the right one, ``why``
    what the learner reads after answering (right or wrong)."""

    text: str
    choices: Tuple[str, ...]
    answer: int
    why: str

    def __post_init__(self):
        if len(self.choices) < 2:
            raise ValueError(f"a question needs at least two choices: {self.text!r}")
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(f"answer {self.answer} is not one of the {len(self.choices)} choices: {self.text!r}")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"two choices are the same: {self.text!r}")

    def is_right(self, choice: int) -> bool:
        if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < len(self.choices):
            raise ValueError(f"choose one of 0..{len(self.choices) - 1} (the choices in order), got {choice!r}")
        return choice == self.answer

    def feedback(self, choice: int) -> str:
        verdict = "Right." if self.is_right(choice) else f"Not quite: the answer is ({self.answer}) " \
                                                           f"{self.choices[self.answer]}."
        return f"{verdict} {self.why}"


QUIZZES: Dict[str, List[Question]] = {}

# Each notebook's block sets QUIZZES["0N"] to three to five questions.
# ---- 01 the search space ----
QUIZZES["01"] = [
    Question("How many candidate operations does HiNAS search over on each edge (`hinas_lib.ops.PRIMITIVES`, "
             "`none` included)?",
             ("6", "7", "8", "9"), 1,
             "none, skip_connect, conv_3x3, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5 (the authors' "
             "code: the same seven with dense dilated convolutions). DARTS has eight: max and average pooling, "
             "and no plain 3x3 convolution."),
    Question("You add 3 to every alpha of one mixed edge. What happens to the edge's output?",
             ("Every op's weight grows, so the output is larger", "`none` gains the most weight",
              "Nothing: softmax depends only on differences between the alphas",
              "The output is multiplied by e^3"), 2,
             "softmax(alpha + c) = softmax(alpha): the weights, hence the mixed op, are unchanged."),
    Question("How many mixed edges does a search cell with B = 3 blocks have?",
             ("6", "12", "3", "9"), 3,
             "Block i sums a mixed op over every earlier state: 2 + i edges, so 2 + 3 + 4 = 9."),
    Question("Why is BatchNorm non-affine (no learnable scale and shift) during the search?",
             ("So that an op cannot undo its architecture weight by rescaling its own output",
              "To save memory", "Because the images are grey", "Because affine BN cannot be fused"), 0,
             "With a learnable scale an op could grow to compensate a small softmax(alpha) weight, and alpha "
             "would stop meaning how much the op is chosen (as in DARTS)."),
    Question("Deriving a discrete cell keeps, for every block, ...",
             ("one incoming edge, with any op", "two incoming edges, each with one op other than `none`",
              "every incoming edge, with its strongest op", "two incoming edges, `none` allowed"), 1,
             "The top-2 rule: two inputs per block, each with its best op other than `none`; hence the "
             "(2+i choose 2) x 6^2 choices per block of section 4."),
]

# ---- 02 LWAS ----
QUIZZES["02"] = [
    Question("Under layer-wise sharing (LWAS), what is the shape of alpha in the tiny space (L = 2 layers, "
             "B = 2 blocks, seven ops)?",
             ("(1, 5, 7)", "(2, 3, 5, 7)", "(2, 5, 7)", "(5, 7)"), 2,
             "One E x |O| matrix per layer: E = 2 + 3 = 5 edges, so (L, E, |O|) = (2, 5, 7). (1, 5, 7) is tied, "
             "(2, 3, 5, 7) per-cell."),
    Question("Which alpha sharing gives the smallest space of derived networks?",
             ("tied (one alpha for the whole network)", "layer-wise", "per-cell", "all three give the same"), 0,
             "Tied alpha derives one cell repeated at every layer: |C| x P networks; layer-wise and per-cell both "
             "give one cell per layer, |C|^L x P."),
    Question("Does the sharing mode change the number of convolution weights of the supernet?",
             ("Yes: per-cell has S times more", "No: only which alpha each cell reads changes",
              "Yes: tied has fewer", "Only with cell sharing off"), 1,
             "describe() gives the same supernet_params in all three modes; only the architecture parameters differ."),
    Question("With per-cell alpha on the tiny grid (L = 2, three widths), how many of the 6 alpha slices get a "
             "gradient?",
             ("6", "5", "2", "1"), 1,
             "Level 2 (2x) cannot be reached at layer 0 (one level per layer from the stem), so slice (0, 2) is read "
             "by no cell and never moves."),
    Question("What does LWAS, the inner-space strategy the HiNAS paper proposes, share?",
             ("one alpha per layer, read by every cell of that layer (every width)",
              "one alpha for the whole network, as DARTS repeats one cell",
              "one alpha per grid node, each cell its own",
              "the cells' weights across layers"), 0,
             "Layer-wise architecture sharing: alpha has shape (L, edges, ops) and every width level of a layer "
             "derives the same cell; the other two are the comparisons this course runs (tied, per-cell). Only the "
             "architecture is shared, never the weights."),
]

# ---- 03 the outer space and cell sharing ----
QUIZZES["03"] = [
    Question("beta[l, s, k] weighs move k out of node (l-1, s). Which move is k = 2 (`grid.MOVES`)?",
             ("lower", "keep", "raise"), 2,
             "grid.MOVES = ('lower', 'keep', 'raise'): k = 2 goes from level s to s + 1 (more channels)."),
    Question("With three widths, which width levels exist at layer 0?",
             ("only level 0 (1x)", "levels 0 and 1 (1x, 1.5x)", "all three levels"), 1,
             "The stem is at level 0 and a move changes the level by at most one: layer l reaches levels "
             "0 .. min(l + 1, S - 1)."),
    Question("In the compact design (these notebooks), which moves have a router (a 1x1 conv)?",
             ("only the moves that change the width (lower, raise)", "every move, keep included",
              "only raise", "none: the cells change the width"), 0,
             "Compact: keep is the identity. In the authors' design every move out of a node, keep included, has its "
             "own 1x1 conv + BN (hinas_lib/authors.py)."),
    Question("Why does HiNAS decode the width path with Viterbi rather than a greedy walk?",
             ("Viterbi is faster", "A greedy walk can enter a node whose moves are all weak; Viterbi maximises the "
              "product of the move weights over the whole path", "Greedy walks may take illegal moves",
              "They always give the same path"), 1,
             "The path's probability is the product of its moves' softmax(beta) weights; dynamic programming finds "
             "the most probable one, which a locally best first move can miss (try it with the beta sliders)."),
    Question("With cell sharing, a node with three incoming moves runs ...",
             ("three cells, one per move, and mixes their outputs", "no cell",
              "one cell on the beta-weighted sum of its routed inputs", "one cell per width level"), 2,
             "HiNAS mixes first and runs one cell per node; Auto-DeepLab runs one cell per incoming move (7 cells "
             "instead of 5 on the tiny grid)."),
]

# ---- 04 the search loop ----
QUIZZES["04"] = [
    Question("In the first-order search, what does one architecture step change?",
             ("every parameter: weights, alpha and beta", "alpha and beta only", "the weights only",
              "alpha only; beta moves in the weight step"),
             1, "arch_step asks autograd for d loss / d(alpha, beta) on a validation batch and steps Adam on "
                "them alone; the weights move only in weight_step, on a training batch (checked in section 2)."),
    Question("A heatmap of alpha reads +0.1 in one square (the unit is points). What is that op's softmax weight?",
             ("0.1", "0.2429", "0.1439: the uniform 1/7 = 0.1429 plus 0.1 hundredths", "0.1429 x 1.1 = 0.1572"),
             2, "The heatmaps show softmax(alpha) minus its uniform value 1/7, times 100 (percentage points): "
                "+0.1 points is 0.001 above 0.1429. Short searches move alpha by so little that fractions "
                "would all print as +0.00."),
    Question("What is the 'collapse' of DARTS-style searches?",
             ("a drift of the derived cells to parameter-free ops such as skip_connect",
              "the supernet's training loss diverging", "beta always choosing the narrowest width path",
              "alpha of every edge becoming exactly uniform"),
             0, "Parameter-free ops (skip_connect above all) help the supernet early, so alpha drifts to them and "
                "the derived network ends up shallow (Zela et al. 2020; DARTS+ and DARTS- counter it). The "
                "library's search.aux_skip is DARTS-'s counter: an auxiliary skip that decays to zero."),
    Question("With search.select = 'best', select_by = 'ssim_psnr' (the authors' choice), which genotype does "
             "genotype.json hold?",
             ("the final epoch's", "the epoch with the lowest architecture loss",
              "the epoch with the highest PSNR, warm-up included",
              "the epoch with the highest SSIM + PSNR/100, from select_from on"),
             3, "hinas_lib.schedules.selection_score(psnr, ssim, 'ssim_psnr') = SSIM + PSNR/100; the authors "
                "keep the best epoch from epoch 60 on (select_from; -1 means the end of the warm-up)."),
    Question("The zoo's search ran 400 architecture steps; at its end the spread of softmax(alpha) over an "
             "edge's 7 ops was 0.024 on average. What does that say?",
             ("alpha has clearly decided every edge", "the ops are still close to uniform (1/7 = 0.143 each), "
              "so the derived cell is fragile", "the search diverged", "the learning rate of alpha was too high"),
             1, "A spread of 0.024 means the best and worst op of an edge differ by 0.024 around 0.143: the "
                "top-2 rule still picks edges, but small pushes change them (the study's search at a 10x "
                "rate still changed 13 of 24 edges in its last epoch)."),
]

# ---- 05 derive and retrain ----
QUIZZES["05"] = [
    Question("The top-2 rule keeps, for each block, the two incoming edges with the largest ...",
             ("weight of none", "sum of all their op weights",
              "softmax weight of their best op other than none", "raw logit of conv_3x3"),
             2, "Each edge competes with its strongest op other than none; none only takes weight away through "
                "the softmax (the DARTS rule; derive.derive_cell)."),
    Question("Why is beta normalised over the moves leaving each node (not those entering it)?",
             ("it makes the search faster",
              "then the width paths' probabilities sum to one, and Viterbi finds the most probable path",
              "so that every node has exactly three moves", "it is the only way the grid can be masked"),
             1, "Outgoing normalisation makes beta transition probabilities (as in Auto-DeepLab); incoming "
                "normalisation would give nodes with a single way in a free log 1 = 0 and favour them."),
    Question("The study's searched and random genotypes were all retrained with the same recipe, seed and "
             "data order. Why?",
             ("to save time", "so that the searched ones get an advantage",
              "because random genotypes cannot be trained otherwise",
              "so that a difference in PSNR comes from the genotype, not from the budget or the luck of "
              "initialisation"),
             3, "Equal training isolates the architecture; the seed spread (one genotype, several seeds) then "
                "tells whether the differences between genotypes are larger than chance."),
    Question("This notebook's fast-mode network scores below non-local means. What follows?",
             ("nothing about the method: 250 training steps only show that the pipeline runs; the zoo's model, "
              "made by the same code with a real budget, is the one compared with NLM and BM3D",
              "HiNAS is worse than NLM", "NLM was given an unfair advantage", "the search chose a bad cell"),
             0, "A demo of seconds is not a result. The shipped zoo/denoise-s30 is evaluated beside NLM and BM3D "
                "on the same photographs, and its Set12 figures are in its info.json."),
    Question("On Set12 at sigma 30 (zoo/denoise-s30's info.json), how do the two classical baselines and the "
             "zoo model compare?",
             ("NLM is ahead of BM3D", "BM3D is about 1.6 dB above NLM, and the zoo model is barely above BM3D "
              "(29.29 against 29.16 dB)", "the zoo model beats BM3D by about 2 dB",
              "BM3D and NLM score the same"),
             1, "BM3D is the strong classical baseline; beating NLM alone says little. The zoo's model, grown "
                "for hours on one CPU, is 0.14 dB above BM3D (the sigma 70 entry is level with it, the sigma 50 one a little below); "
                "the paper's networks are larger and trained far longer."),
]

# ---- 06 super-resolution ----
QUIZZES["06"] = [
    Question("PixelShuffle(r) receives a feature map of 3r^2 x H x W. What comes out?",
             ("3r^2 x rH x rW", "3 x rH x rW", "3 x H x W", "3r x rH x rW"), 1,
             "r^2 channels become one channel r times larger in each direction: 3 x rH x rW."),
    Question("How is a x3 SR result scored in this library (and in SR papers)?",
             ("PSNR on RGB, whole image", "PSNR on the Y channel, 3 border pixels shaved",
              "PSNR on the Y channel, whole image", "SSIM only"), 1,
             "metric_kwargs = {'crop_border': scale, 'test_y_channel': True}: luma of BT.601, scale pixels shaved."),
    Question("What does the SR head add to the pixel-shuffled output?",
             ("nothing", "the LR input, unscaled", "a bicubic upscaling of the LR input", "a learned upsampling"), 2,
             "y = PS(conv(f)) + bicubic(x): the network only learns the missing high frequencies."),
    Question("Which search recipe does the `paper-sr` preset (the authors' design) use?",
             ("SGD with cosine lr, gradient clipping at 5, L1 + (-log((1 + SSIM)/2))",
              "poly-cosine lr, no gradient clipping, (L1 + 0.6 (-log10 SSIM)) / 2",
              "Adam with a constant lr, MSE only", "the same as the tiny preset"), 1,
             "That is the authors' SR recipe; the first choice is the compact design's, which this notebook runs."),
]

# ---- 07 results and scaling ----
QUIZZES["07"] = [
    Question("A model searched and trained on the authors' BSD500 split (train + val, 300 images): why not report "
             "it on BSD68?",
             ("BSD68 is colour", "BSD68's images are BSDS500 val images, which this split trains on",
              "BSD68 is too small", "BSD68 uses another noise level"), 1,
             "Test on BSD200 (the test images); for BSD68, prepare the `--split bsd68` data and the test set with "
             "prepare_testsets.py."),
    Question("What does the `checkpoint` variant of benchmarks/RESULTS.md trade?",
             ("less time for more memory", "less peak memory for more time: cell activations are recomputed in "
              "the backward pass", "accuracy for speed", "nothing: it is the default"), 1,
             "space.checkpoint_cells: about 0.3x the peak memory for about 1.4x the time at the paper's denoising "
             "size (authors' design)."),
    Question("In the short ablation, tied, layer-wise and per-cell alpha leave the same supernet PSNR. What does "
             "that show?",
             ("that alpha sharing does not matter", "that tied alpha is as good as LWAS",
              "nothing about quality: in a few steps alpha barely moves, so the three supernets are nearly the same",
              "that per-cell alpha is best"), 2,
             "A few search steps, one seed, and the supernet rather than retrained networks: the numbers cannot rank "
             "the variants."),
    Question("What does turning cell sharing off change?",
             ("the number of candidate architectures", "the cost: more cells, weights and activation memory per "
              "step, for a space of the same size", "only the width path", "the alpha shape"), 1,
             "describe(): 7 cells instead of 5 on the tiny grid, the same candidate architectures and alpha shape."),
    Question("You retrain the tied and layer-wise genotypes with two seeds each. When does the difference of their "
             "mean PSNR say something?",
             ("always", "when it is larger than the spread between seeds of one variant", "when it is positive",
              "never"), 1,
             "The seed-to-seed spread is the yardstick (`ablation.compare_retrained`); at fast mode's budget the "
             "difference is usually within it."),
]
