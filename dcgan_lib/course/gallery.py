"""README's front-page gallery: which records it shows beside the paper's claim, and what a person saw in each image.

`report` renders it from the records in figures/: the paper's side comes from each record's `paper` field,
ours from its metrics, caption, verdict, profile, data and model quality. The only hand-written text here is
what cannot come from a record: the title of each entry, the paper's side where the paper shows no such figure,
and `LOOKED`, a caption written by someone who opened the PNG. Each of those is tied to the image's sha256:
once a figure is regenerated its old caption describes a different picture, so the report prints "not looked
at yet" instead until someone opens the new image and writes its caption here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One gallery entry: records (their images side by side) under one title."""

    title: str
    stems: tuple[str, ...]  # record stems in figures/; each shows its first image
    paper: str = ""  # the paper's side where its records carry no caption


ENTRIES = (
    Entry("Figs. 2-3: bedrooms after one epoch and after five (Paper §4.1), and the stored model of Figs. 4-6",
          ("fig2_bedrooms_one_epoch", "fig3_bedrooms_five_epochs", "bedrooms_samples")),
    Entry("Fig. 4: walking the latent space (Paper §6.1)", ("fig4_bedrooms_walk",)),
    Entry("Fig. 5: what D's last conv features respond to (Paper §6.2)", ("fig5_guided_backprop",)),
    Entry("Fig. 6: forgetting to draw windows (Paper §6.3.1)", ("fig6_forgetting_windows",)),
    Entry("Faces: the stored model of Figs. 7-8 (Paper §4.2)", ("faces_samples",),
          paper="The paper shows its face model's samples only inside Figs. 7-8, trained on 350,000 faces it never "
                "released."),
    Entry("Fig. 7: vector arithmetic on faces (Paper §6.3.2)", ("fig7_vector_arithmetic",)),
    Entry("Fig. 8: a turn vector in Z (Paper §6.3.2)", ("fig8_face_pose",)),
    Entry("The authors' SVHN generator through our port (Paper §5.2)", ("authors_svhn_samples",),
          paper="The paper shows no SVHN samples. This is the authors' released generator of the run whose "
                "discriminator gives Table 2, sampled through our port of their weights: if the port were wrong, "
                "these would not be digits."),
)


@dataclass(frozen=True)
class Row:
    """One row of the gallery's numbers table: a metric of a record beside the paper's."""

    label: str
    stem: str
    ours: str  # key in the record's metrics
    paper: str  # key in the record's paper field ("" when the paper has no such number)
    kind: str  # "pct" (a fraction shown as a percentage) or "fid"


NUMBERS = (
    Row("Table 1: CIFAR-10 accuracy, our D's features + L2-SVM", "table1_cifar10", "dcgan_accuracy",
        "dcgan_accuracy", "pct"),
    Row("Table 1: CIFAR-10 accuracy, 1-layer K-means + L2-SVM", "table1_cifar10", "kmeans_1layer_accuracy",
        "kmeans_1layer_accuracy", "pct"),
    Row("Table 1: CIFAR-10 accuracy, the authors' released D + L2-SVM", "table1_cifar10_authors", "dcgan_accuracy",
        "dcgan_accuracy", "pct"),
    Row("Table 1 at the paper's size (every CIFAR-10 image), the authors' released D", "table1_full_size_authors",
        "dcgan_accuracy", "dcgan_accuracy", "pct"),
    Row("Table 1 at the paper's size (every CIFAR-10 image), an untrained D", "table1_full_size_random",
        "dcgan_accuracy", "", "pct"),
    Row("Table 2: SVHN error with 1000 labels, our D's features + L2-SVM", "table2_svhn", "dcgan_error",
        "dcgan_error", "pct"),
    Row("Table 2: SVHN error with 1000 labels, the same CNN trained supervised", "table2_svhn",
        "supervised_cnn_error", "supervised_cnn_error", "pct"),
    Row("Table 2: SVHN error with 1000 labels, the authors' released D + L2-SVM", "table2_svhn_authors",
        "dcgan_error", "dcgan_error", "pct"),
    Row("CIFAR-10 FID of a DCGAN G (10,000 samples against the test images)", "fid_model_cifar10_imagenet32_cpu",
        "fid", "fid", "fid"),
    Row("CIFAR-10 FID of a DCGAN G (10,000 samples against the test images)", "fid_model_cifar10_imagenet32_paper",
        "fid", "fid", "fid"),
)

# image file name -> (first 12 hex digits of its sha256, what a person saw when they opened it). No numbers
# here: the numbers beside each image come from its record.
LOOKED: dict[str, tuple[str, str]] = {
    "fig2_bedrooms_one_epoch.png": (
        "a48c5ccff39e", "Every sample is the same grey tiling of light and dark blotches in three or four rows: "
        "after one pass over the mirror's 7,505 training bedrooms (117 steps) G has learnt nothing visible. The "
        "paper's one-epoch samples (23,695 steps of 3M bedrooms) are already bedrooms; ours are not."),
    "fig3_bedrooms_five_epochs.png": (
        "7176cb810270", "Grey and orange washes with bright white blocks (the first hint of windows and sheets) and "
        "dark bands along the bottom, on a faint repeated grid; the cells differ but no room, bed or window can be "
        "recognised yet. Our fifth epoch is 585 steps, the paper's 118,475."),
    "bedrooms_samples.png": (
        "e6d375d0521b", "Bedrooms: most samples show a bed with white or pale sheets in a room with walls in "
        "perspective, many with a bright window, some with lamps, a headboard or dark furniture; blurry at 64 px, "
        "some smeared or washed out, and a few (a blue-white jumble, a dark doorway) with no room in them. The "
        "nearest training images (bedrooms_nearest_neighbours.png) are other rooms of similar colour and layout, "
        "not copies."),
    "fig4_bedrooms_walk.png": (
        "09d755d8090b", "Every frame is a room, and each row changes gradually with no sudden jumps. Rooms change "
        "along the way as the paper describes: the bright window of row 1 gives way to a pale empty wall (row 2), a "
        "dark window of many panes appears above a bed and fills with light (rows 4-5), and a bedroom with a lit "
        "doorway turns into one with a large bright window (row 7), which washes into a pink-lit room (row 8). Row "
        "5 passes through a blue-white jumble."),
    "fig5_guided_backprop.png": (
        "e753cb450856", "The trained D's units (left) answer colour and bedding: unit 0's images are red and pink "
        "beds and purple rooms, unit 2's blue rooms and blue beds, and units 1 and 4 striped or patterned bedding, "
        "with maps of oriented stripes along bed edges that sit on the bed, not on the whole image. The random D's "
        "maps (right) are green speckle blocks with little structure, on unrelated images. Noisier than the paper's "
        "maps, and no unit picks out windows as clearly as the paper's do."),
    "fig6_forgetting_windows.png": (
        "c0703cd6b162", "Top: ten of the boxed samples; bottom: the same z with the window maps dropped. The "
        "windows go: the blue-white panes of the 2nd, 4th and 10th columns turn dark or into a pink smear, the "
        "bright windows of the 3rd and 6th become pink-red stripes, and the 1st and 9th lose their bright panes. "
        "Beds and the rooms' layout stay, but every dropped sample also takes a yellow-green cast and a faint "
        "vertical stripe texture, so the drop changes more than windows; no window turns into a door or mirror that "
        "could be recognised, as some do in the paper."),
    "faces_samples.png": (
        "ba088c40d646",
        "Faces in nearly every cell: mostly women with long hair, some men with short hair, many smiling, mostly "
        "front-on with eyes, nose and mouth in place, on warm, varied backgrounds. About one in six is distorted (a "
        "face smeared into the background, a dark blotch over the eyes, a red or blue smear), the skin is blotchy "
        "and the hair streaky; the grid reads as faces at a glance. Beside the 50-epoch model's grid it looks no "
        "worse, with stronger colours and fewer men."),
    "fig7_vector_arithmetic.png": (
        "9140adee8046",
        "Top: the smiling-woman exemplars smile broadly; the neutral-woman three do not and are smeared; the "
        "'neutral man' three are men (the second in dark glasses). The nine results are one man with short dark "
        "hair and a wide open smile, nearly the same face in all nine with small shifts of colour. Bottom: the 'man "
        "with glasses' exemplars are smeared faces with dark bars where glasses would be, the 'man without' three "
        "are men without and the 'woman without' three women without. The nine results are one pale, washed-out "
        "woman with long hair and no glasses visible in any of them. The pixel-space sums (right) are blurred "
        "overlays of several faces."),
    "fig8_face_pose.png": (
        "bae4a76dce89",
        "Faces in every frame, several smeared. Rows 3, 5 and 6 visibly turn the head from a three-quarter view "
        "towards front-on and beyond; rows 1 and 4 turn a little while hair and background change; row 2 is a "
        "distorted face that becomes a front-on bearded man. Identity drifts along every row. Smaller and less "
        "clean turns than the paper's, but turns."),
    "authors_svhn_samples.png": (
        "6e4aa94d90de", "Recognisable house-number digits in varied colours, fonts and backgrounds, some blurred "
        "or half-formed, as real SVHN crops are: the port draws what the authors' generator learnt."),
}
