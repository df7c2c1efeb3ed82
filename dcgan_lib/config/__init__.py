"""The project's settings, at the ground floor: where things live on disk (paths: ROOT, DCGAN_DATA,
DCGAN_MIRROR), every knob of a run at each size (profiles: smoke, cpu, gpu, paper) and the device rule (device:
CUDA, then Apple's MPS, then the CPU). Every other subpackage may import it; it imports nothing of dcgan_lib
but itself, so one setting has one home that the whole library reads.
"""
