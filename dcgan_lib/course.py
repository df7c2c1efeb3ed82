"""The course map: which notebook rebuilds which part of the paper (README and notebook 00 read it)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    """One notebook: its file stem, the paper section it rebuilds, and what it makes."""

    stem: str
    paper: str
    makes: str


LESSONS = (
    Lesson("00_course_map", "all", "this map; checks the environment and the data"),
    Lesson("01_architecture", "§3, Fig. 1", "builds every G and D variant, checks the 5 guidelines, draws Fig. 1"),
    Lesson("02_dedup_autoencoder", "§4.1", "the 3072-128-3072 semantic hash; precision/recall on planted duplicates"),
    Lesson("03_train_bedrooms", "§4.1, Figs. 2-3", "bedroom samples after 1 epoch and after 5; memorisation check"),
    Lesson("04_train_faces", "§4.2", "OpenCV face detection -> crops -> the faces DCGAN"),
    Lesson("05_train_imagenet", "§4.3", "the 32 px ImageNet model behind Table 1"),
    Lesson("06_cifar10_probe", "§5.1, Table 1", "28,672 D features + L2-SVM on CIFAR-10, beside the paper's table"),
    Lesson("07_svhn_probe", "§5.2, Table 2", "1000-label SVHN protocol, supervised baseline, beside the paper's table"),
    Lesson("08_latent_walk", "§6.1, Fig. 4", "interpolations between 9 points in Z, smoothness measured"),
    Lesson("09_guided_backprop", "§6.2, Fig. 5", "guided backprop of D's last conv features, trained vs random D"),
    Lesson("10_forgetting_windows", "§6.3.1, Fig. 6", "window boxes -> logistic regression -> dropped G feature maps"),
    Lesson("11_vector_arithmetic", "§6.3.2, Fig. 7", "concept averages, +-0.25 noise, pixel-space contrast"),
    Lesson("12_face_pose", "Fig. 8", "the turn vector"),
)
