"""Every parity tolerance, named once. Tests import these; nothing else may loosen them.

The numbers are the acceptance limits of the issues (fp32 work agrees to ~1e-4 relative; tokens and
text agree exactly). A parity failure is a bug to find, never a reason to change a value here.
"""

MEL_FILTERS_ATOL = 1e-7            # our filterbank formula vs OpenAI's mel_filters.npz
LOG_MEL_ATOL = 1e-4                # log-mel vs Paddle's, every golden clip
LOG_MEL_PRECISION_ATOL = 1e-6      # log-mel guard: measured worst 2.4e-7 (2 float32 ulps) on 108 clips;
                                   # a float32 numpy.fft STFT alone would already give ~3e-5
ENCODER_ATOL = 1e-3                # encoder output max |diff|
ENCODER_REL_FROBENIUS = 1e-5       # ||ours - theirs||_F / ||theirs||_F
LOGITS_ATOL = 2e-3                 # decoder logits max |diff| (plus identical argmax and top-5 order)
LOGITS_TOPK_ORDER = 5              # the top-k whose order must be identical
LANGUAGE_PROBS_ATOL = 1e-4         # language-detection probabilities
RESULT_SCORE_ATOL = 1e-3           # avg_logprob, no_speech_prob, compression_ratio in results
DECODER_CACHE_ATOL = 1e-4          # numwhisper vs itself: logits of one decoder pass vs the same tokens fed
                                   # step by step / as beams of a batch (only summation order differs)
