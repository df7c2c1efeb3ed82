"""The model store and what is read from its runs: a trained, measured model by (dataset, variant,
profile), trained at the profile's size when missing, with its final FID and KID in the run record (store); a
run's losses and FID over its snapshots (trainlog); nearest neighbours of samples over training
(memorisation). It sits above `gan` and `measure` because it joins them: it imports both and every floor
below them.
"""
